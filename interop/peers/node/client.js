'use strict';
// grpc.testing.TestService interop client on @grpc/grpc-js, written from
// grpc/grpc doc/interop-test-descriptions.md.
//
//   node client.js --server_host=H --server_port=P --test_case=NAME
//        [--use_tls=true [--use_test_ca=true --ca_file=F] [--server_host_override=N]]
//
// Exit status: 0 the case passed; 1 it failed (one line says why); 3 grpc-js
// cannot perform the case (listed in ../LIMITATIONS.md); 2 bad usage.
const fs = require('fs');
const { grpc, load, parseFlags, ECHO_INITIAL, ECHO_TRAILING } = require('./common');

const testing = load();
const ECHO_INITIAL_VALUE = 'test_initial_metadata_value';
const ECHO_TRAILING_VALUE = Buffer.from([0xab, 0xab, 0xab]);
const SPECIAL_MESSAGE = '\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \u{1f608}\t\n';
const CALL_TIMEOUT_MS = 20000; // bounds every call not about deadlines

class Failure extends Error {}
class Unsupported extends Error {}

function check(cond, msg) {
  if (!cond) throw new Failure(msg);
}

function zeros(n) {
  return { body: Buffer.alloc(n) };
}

function deadline(ms = CALL_TIMEOUT_MS) {
  return new Date(Date.now() + ms);
}

function checkPayload(p, n, what) {
  const len = p && p.body ? p.body.length : 0;
  check(len === n, `${what}: payload is ${len} bytes, want ${n}`);
  check(p.body.equals(Buffer.alloc(n)), `${what}: payload is not all zeros`);
}

function codeName(c) {
  return Object.keys(grpc.status).find((k) => grpc.status[k] === c) || String(c);
}

function checkCode(err, want, what) {
  const got = err ? err.code : grpc.status.OK;
  check(got === want,
    `${what}: status ${codeName(got)} (${err ? JSON.stringify(err.details) : ''}), want ${codeName(want)}`);
}

function unary(client, method, req, opts = {}) {
  return new Promise((resolve) => {
    const md = opts.metadata || new grpc.Metadata();
    const result = { err: null, resp: null, header: null, trailer: null };
    const call = client[method](req, md, { deadline: deadline() }, (err, resp) => {
      result.err = err;
      result.resp = resp;
      // The status event (with the trailers) precedes the callback.
      resolve(result);
    });
    call.on('metadata', (m) => { result.header = m; });
    call.on('status', (s) => { result.trailer = s.metadata; });
  });
}

// Reads a duplex or server stream to its end: {responses, status, header}.
function collect(call, onData) {
  return new Promise((resolve) => {
    const out = { responses: [], status: null, header: null, err: null };
    call.on('metadata', (m) => { out.header = m; });
    call.on('data', (d) => {
      out.responses.push(d);
      if (onData) onData(d, out.responses.length);
    });
    call.on('error', (e) => { out.err = e; });
    call.on('status', (s) => {
      out.status = s;
      resolve(out);
    });
  });
}

function nextResponse(call) {
  return new Promise((resolve) => {
    const onData = (d) => { cleanup(); resolve({ data: d }); };
    const onEnd = () => { cleanup(); resolve({ end: true }); };
    const onErr = (e) => { cleanup(); resolve({ err: e }); };
    function cleanup() {
      call.removeListener('data', onData);
      call.removeListener('end', onEnd);
      call.removeListener('error', onErr);
    }
    call.on('data', onData);
    call.on('end', onEnd);
    call.on('error', onErr);
  });
}

const largeReq = (extra = {}) => ({ response_size: 314159, payload: zeros(271828), ...extra });

const cases = {
  async empty_unary({ stub }) {
    const r = await unary(stub, 'EmptyCall', {});
    checkCode(r.err, grpc.status.OK, 'EmptyCall');
    check(r.resp !== null && r.resp !== undefined, 'EmptyCall: no response');
  },

  async large_unary({ stub }) {
    const r = await unary(stub, 'UnaryCall', largeReq());
    checkCode(r.err, grpc.status.OK, 'UnaryCall');
    checkPayload(r.resp.payload, 314159, 'UnaryCall');
  },

  async client_streaming({ stub }) {
    const r = await new Promise((resolve) => {
      const call = stub.StreamingInputCall({ deadline: deadline() }, (err, resp) => resolve({ err, resp }));
      for (const n of [27182, 8, 1828, 45904]) call.write({ payload: zeros(n) });
      call.end();
    });
    checkCode(r.err, grpc.status.OK, 'StreamingInputCall');
    check(r.resp.aggregated_payload_size === 74922,
      `aggregated_payload_size ${r.resp.aggregated_payload_size}, want 74922`);
  },

  async server_streaming({ stub }) {
    const sizes = [31415, 9, 2653, 58979];
    const call = stub.StreamingOutputCall(
      { response_parameters: sizes.map((size) => ({ size })) }, { deadline: deadline() });
    const out = await collect(call);
    checkCode(out.err, grpc.status.OK, 'StreamingOutputCall');
    check(out.responses.length === 4, `${out.responses.length} responses, want 4`);
    out.responses.forEach((r, i) => checkPayload(r.payload, sizes[i], `response ${i}`));
  },

  async ping_pong({ stub }) {
    const pairs = [[31415, 27182], [9, 8], [2653, 1828], [58979, 45904]];
    const call = stub.FullDuplexCall({ deadline: deadline() });
    const done = collect(call);
    call.removeAllListeners('data'); // collect's counting is not wanted here
    for (let i = 0; i < pairs.length; i++) {
      call.write({ response_parameters: [{ size: pairs[i][0] }], payload: zeros(pairs[i][1]) });
      const r = await nextResponse(call);
      check(r.data, `no response ${i}${r.err ? `: ${r.err.message}` : ''}`);
      checkPayload(r.data.payload, pairs[i][0], `response ${i}`);
    }
    call.end();
    const r = await nextResponse(call);
    check(!r.data, 'a fifth response');
    const out = await done;
    checkCode(out.err, grpc.status.OK, 'FullDuplexCall');
  },

  async empty_stream({ stub }) {
    const call = stub.FullDuplexCall({ deadline: deadline() });
    call.end();
    const out = await collect(call);
    checkCode(out.err, grpc.status.OK, 'FullDuplexCall');
    check(out.responses.length === 0, `${out.responses.length} responses, want 0`);
  },

  async timeout_on_sleeping_server({ stub }) {
    const call = stub.FullDuplexCall({ deadline: deadline(1) });
    const done = collect(call);
    call.write({ payload: zeros(27182) });
    const out = await done;
    checkCode(out.err, grpc.status.DEADLINE_EXCEEDED, 'FullDuplexCall');
  },

  async cancel_after_begin({ stub }) {
    const r = await new Promise((resolve) => {
      const call = stub.StreamingInputCall({ deadline: deadline() }, (err, resp) => resolve({ err, resp }));
      call.cancel();
    });
    checkCode(r.err, grpc.status.CANCELLED, 'StreamingInputCall');
  },

  async cancel_after_first_response({ stub }) {
    const call = stub.FullDuplexCall({ deadline: deadline() });
    const done = collect(call);
    call.write({ response_parameters: [{ size: 31415 }], payload: zeros(27182) });
    const r = await nextResponse(call);
    check(r.data, `no first response${r.err ? `: ${r.err.message}` : ''}`);
    checkPayload(r.data.payload, 31415, 'first response');
    call.cancel();
    const out = await done;
    checkCode(out.err, grpc.status.CANCELLED, 'FullDuplexCall');
  },

  async custom_metadata({ stub }) {
    const md = () => {
      const m = new grpc.Metadata();
      m.set(ECHO_INITIAL, ECHO_INITIAL_VALUE);
      m.set(ECHO_TRAILING, ECHO_TRAILING_VALUE);
      return m;
    };
    const checkEcho = (header, trailer, what) => {
      const i = header ? header.get(ECHO_INITIAL) : [];
      check(i.length === 1 && i[0] === ECHO_INITIAL_VALUE,
        `${what}: initial metadata ${ECHO_INITIAL} = ${JSON.stringify(i)}, want ["${ECHO_INITIAL_VALUE}"]`);
      const t = trailer ? trailer.get(ECHO_TRAILING) : [];
      check(t.length === 1 && Buffer.isBuffer(t[0]) && t[0].equals(ECHO_TRAILING_VALUE),
        `${what}: trailing metadata ${ECHO_TRAILING} = ${JSON.stringify(t)}, want [0xababab]`);
    };
    const r = await unary(stub, 'UnaryCall', largeReq(), { metadata: md() });
    checkCode(r.err, grpc.status.OK, 'UnaryCall');
    checkPayload(r.resp.payload, 314159, 'UnaryCall');
    checkEcho(r.header, r.trailer, 'UnaryCall');

    const call = stub.FullDuplexCall(md(), { deadline: deadline() });
    const done = collect(call);
    call.write({ response_parameters: [{ size: 314159 }], payload: zeros(271828) });
    call.end();
    const out = await done;
    checkCode(out.err, grpc.status.OK, 'FullDuplexCall');
    check(out.responses.length === 1, `FullDuplexCall: ${out.responses.length} responses, want 1`);
    checkPayload(out.responses[0].payload, 314159, 'FullDuplexCall');
    checkEcho(out.header, out.status.metadata, 'FullDuplexCall');
  },

  async status_code_and_message({ stub }) {
    const msg = 'test status message';
    const r = await unary(stub, 'UnaryCall', { response_status: { code: 2, message: msg } });
    check(r.err && r.err.code === 2, `UnaryCall: status ${r.err ? r.err.code : 0}, want 2`);
    check(r.err.details === msg, `UnaryCall: message ${JSON.stringify(r.err.details)}, want ${JSON.stringify(msg)}`);
    const call = stub.FullDuplexCall({ deadline: deadline() });
    const done = collect(call);
    call.write({ response_status: { code: 2, message: msg } });
    call.end();
    const out = await done;
    check(out.status.code === 2, `FullDuplexCall: status ${out.status.code}, want 2`);
    check(out.status.details === msg,
      `FullDuplexCall: message ${JSON.stringify(out.status.details)}, want ${JSON.stringify(msg)}`);
  },

  async special_status_message({ stub }) {
    const r = await unary(stub, 'UnaryCall', { response_status: { code: 2, message: SPECIAL_MESSAGE } });
    check(r.err && r.err.code === 2, `UnaryCall: status ${r.err ? r.err.code : 0}, want 2`);
    check(r.err.details === SPECIAL_MESSAGE,
      `UnaryCall: message ${JSON.stringify(r.err.details)}, want ${JSON.stringify(SPECIAL_MESSAGE)}`);
  },

  async unimplemented_method({ stub }) {
    const r = await unary(stub, 'UnimplementedCall', {});
    check(r.err, 'UnimplementedCall succeeded');
    checkCode(r.err, grpc.status.UNIMPLEMENTED, 'UnimplementedCall');
  },

  async unimplemented_service({ target, creds, options }) {
    const stub = new testing.UnimplementedService(target, creds, options);
    try {
      const r = await unary(stub, 'UnimplementedCall', {});
      check(r.err, 'UnimplementedService/UnimplementedCall succeeded');
      checkCode(r.err, grpc.status.UNIMPLEMENTED, 'UnimplementedService/UnimplementedCall');
    } finally {
      stub.close();
    }
  },

  async client_compressed_unary({ stub, target, creds, options }) {
    const probe = await unary(stub, 'UnaryCall', largeReq({ expect_compressed: { value: true } }));
    check(probe.err, 'probe: uncompressed request with expect_compressed succeeded, want INVALID_ARGUMENT');
    checkCode(probe.err, grpc.status.INVALID_ARGUMENT, 'probe');
    // grpc-js chooses request compression per channel: a second channel
    // compresses every message it sends with gzip (algorithm 2).
    const gz = new testing.TestService(target, creds,
      { ...options, 'grpc.default_compression_algorithm': 2 });
    try {
      const r = await unary(gz, 'UnaryCall', largeReq({ expect_compressed: { value: true } }));
      checkCode(r.err, grpc.status.OK, 'compressed UnaryCall');
      checkPayload(r.resp.payload, 314159, 'compressed UnaryCall');
    } finally {
      gz.close();
    }
    const r = await unary(stub, 'UnaryCall', largeReq({ expect_compressed: { value: false } }));
    checkCode(r.err, grpc.status.OK, 'uncompressed UnaryCall');
    checkPayload(r.resp.payload, 314159, 'uncompressed UnaryCall');
  },

  async client_compressed_streaming({ stub, target, creds, options }) {
    const streamCall = (client, write) => new Promise((resolve) => {
      const call = client.StreamingInputCall({ deadline: deadline() }, (err, resp) => resolve({ err, resp }));
      call.on('error', () => {});
      write(call);
      call.end();
    });
    // Probe: an uncompressed message that claims to be compressed.
    const probe = await streamCall(stub, (call) => call.write(
      { expect_compressed: { value: true }, payload: zeros(27182) }));
    check(probe.err, 'probe: uncompressed message with expect_compressed succeeded, want INVALID_ARGUMENT');
    checkCode(probe.err, grpc.status.INVALID_ARGUMENT, 'probe');
    // A gzip channel compresses every message unless the write carries the
    // NoCompress flag (2), which grpc-js takes in write()'s encoding slot.
    const gz = new testing.TestService(target, creds,
      { ...options, 'grpc.default_compression_algorithm': 2 });
    try {
      const r = await streamCall(gz, (call) => {
        call.write({ expect_compressed: { value: true }, payload: zeros(27182) });
        call.write({ expect_compressed: { value: false }, payload: zeros(45904) }, 2 /* NoCompress */);
      });
      checkCode(r.err, grpc.status.OK, 'StreamingInputCall');
      check(r.resp.aggregated_payload_size === 73086,
        `aggregated_payload_size ${r.resp.aggregated_payload_size}, want 73086`);
    } finally {
      gz.close();
    }
  },

  async server_compressed_unary() {
    throw new Unsupported('grpc-js does not expose the compressed flag of a received message');
  },

  async server_compressed_streaming() {
    throw new Unsupported('grpc-js does not expose the compressed flag of a received message');
  },
};

async function main() {
  let flags;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (e) {
    return [2, `FAIL: ${e.message}`];
  }
  const run = cases[flags.test_case];
  const port = Number(flags.server_port);
  if (!run || !(port > 0)) return [2, `FAIL: bad usage (test case "${flags.test_case}", port ${flags.server_port})`];
  const host = flags.server_host || '127.0.0.1';
  const target = `${host}:${port}`;
  const options = {};
  let creds;
  if (flags.use_tls === 'true') {
    const roots = flags.use_test_ca === 'true' ? fs.readFileSync(flags.ca_file) : null;
    creds = grpc.credentials.createSsl(roots);
    if (flags.server_host_override) {
      options['grpc.ssl_target_name_override'] = flags.server_host_override;
      options['grpc.default_authority'] = flags.server_host_override;
    }
  } else {
    creds = grpc.credentials.createInsecure();
    if (flags.server_host_override) options['grpc.default_authority'] = flags.server_host_override;
  }
  const stub = new testing.TestService(target, creds, options);
  const timer = new Promise((resolve) => setTimeout(() => resolve('timeout'), 60000).unref());
  try {
    const r = await Promise.race([run({ stub, target, creds, options }), timer]);
    if (r === 'timeout') return [1, 'FAIL: case still running after 60 s'];
    return [0, 'PASS'];
  } catch (e) {
    if (e instanceof Unsupported) return [3, `UNSUPPORTED: ${e.message}`];
    if (e instanceof Failure) return [1, `FAIL: ${e.message}`];
    return [1, `FAIL: ${e && e.stack ? e.stack.split('\n')[0] : e}`];
  } finally {
    stub.close();
  }
}

main().then(([code, line]) => {
  process.stdout.write(`${line.replace(/\n/g, '\\n')}\n`, () => process.exit(code));
});
