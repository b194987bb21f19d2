'use strict';
// grpc.testing.TestService interop server on @grpc/grpc-js, written from
// grpc/grpc doc/interop-test-descriptions.md.
//
//   node server.js --port=PORT [--use_tls=true --tls_cert_file=F --tls_key_file=F]
//
// Listens on 127.0.0.1 only, prints "listening" once serving; SIGTERM stops
// it. Known limitations (../LIMITATIONS.md): grpc-js does not compress
// responses (CompressedResponse) and does not tell a handler whether a
// request message was compressed (CompressedRequest).
const fs = require('fs');
const { grpc, load, parseFlags, ECHO_INITIAL, ECHO_TRAILING } = require('./common');

const testing = load();

function echoMetadata(call) {
  const initial = new grpc.Metadata();
  for (const v of call.metadata.get(ECHO_INITIAL)) initial.add(ECHO_INITIAL, v);
  call.sendMetadata(initial);
  const trailing = new grpc.Metadata();
  for (const v of call.metadata.get(ECHO_TRAILING)) trailing.add(ECHO_TRAILING, v);
  return trailing;
}

function statusError(echo, trailing) {
  return { code: echo.code, details: echo.message, metadata: trailing };
}

function zeros(n) {
  return { body: Buffer.alloc(n) };
}

function sleepUs(us) {
  return new Promise((resolve) => setTimeout(resolve, us / 1000));
}

// Writes the responses one request asks for, observing interval_us and
// write backpressure.
async function respond(call, req) {
  for (const p of req.response_parameters) {
    if (p.interval_us > 0) await sleepUs(p.interval_us);
    if (call.cancelled) return;
    const ok = call.write({ payload: zeros(p.size) });
    if (!ok) await new Promise((resolve) => call.once('drain', resolve));
  }
}

const impl = {
  EmptyCall(call, cb) {
    const trailing = echoMetadata(call);
    cb(null, {}, trailing);
  },

  UnaryCall(call, cb) {
    const trailing = echoMetadata(call);
    const req = call.request;
    const st = req.response_status;
    if (st && st.code !== 0) return cb(statusError(st, trailing));
    cb(null, { payload: zeros(req.response_size) }, trailing);
  },

  async StreamingOutputCall(call) {
    const trailing = echoMetadata(call);
    const req = call.request;
    const st = req.response_status;
    if (st && st.code !== 0) {
      call.emit('error', statusError(st, trailing));
      return;
    }
    await respond(call, req);
    call.end(trailing);
  },

  StreamingInputCall(call, cb) {
    const trailing = echoMetadata(call);
    let total = 0;
    call.on('data', (req) => {
      total += req.payload ? req.payload.body.length : 0;
    });
    call.on('end', () => cb(null, { aggregated_payload_size: total }, trailing));
    call.on('error', () => {});
  },

  FullDuplexCall(call) {
    const trailing = echoMetadata(call);
    let chain = Promise.resolve();
    let done = false;
    call.on('data', (req) => {
      chain = chain.then(async () => {
        if (done) return;
        const st = req.response_status;
        if (st && st.code !== 0) {
          // Echo Status: close with it and take no further messages.
          done = true;
          call.emit('error', statusError(st, trailing));
          return;
        }
        await respond(call, req);
      });
    });
    call.on('end', () => {
      chain = chain.then(() => {
        if (!done) {
          done = true;
          call.end(trailing);
        }
      });
    });
    call.on('error', () => {});
  },

  HalfDuplexCall(call) {
    call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'HalfDuplexCall is not implemented' });
  },

  UnimplementedCall(call, cb) {
    cb({ code: grpc.status.UNIMPLEMENTED, details: 'UnimplementedCall' });
  },
};

function main() {
  const flags = parseFlags(process.argv.slice(2));
  const port = Number(flags.port);
  if (!(port > 0)) {
    console.error('--port is required');
    process.exit(2);
  }
  let creds;
  if (flags.use_tls === 'true') {
    if (!flags.tls_cert_file || !flags.tls_key_file) {
      console.error('--use_tls=true needs --tls_cert_file and --tls_key_file');
      process.exit(2);
    }
    creds = grpc.ServerCredentials.createSsl(null, [{
      private_key: fs.readFileSync(flags.tls_key_file),
      cert_chain: fs.readFileSync(flags.tls_cert_file),
    }]);
  } else {
    creds = grpc.ServerCredentials.createInsecure();
  }
  const server = new grpc.Server();
  server.addService(testing.TestService.service, impl);
  const addr = `127.0.0.1:${port}`;
  server.bindAsync(addr, creds, (err) => {
    if (err) {
      console.error(`cannot listen on ${addr}: ${err.message}`);
      process.exit(1);
    }
    console.log(`listening on ${addr}`);
  });
  const stop = () => {
    server.tryShutdown(() => process.exit(0));
    setTimeout(() => { server.forceShutdown(); process.exit(0); }, 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
