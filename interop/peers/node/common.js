'use strict';
// Loads grpc.testing.TestService from Debian's grpc-proto at run time
// (nothing generated is kept) for the grpc-js interop peers.
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = '/usr/share/grpc-proto';

function load() {
  const def = protoLoader.loadSync('grpc/testing/test.proto', {
    includeDirs: [PROTO_ROOT],
    keepCase: true,
    longs: Number,
    enums: Number,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(def).grpc.testing;
}

// "--name=value" flags into an object; "true"/"false" stay strings.
function parseFlags(argv) {
  const out = {};
  for (const a of argv) {
    const m = /^--([a-z_]+)=(.*)$/s.exec(a);
    if (!m) throw new Error(`bad argument ${a}`);
    out[m[1]] = m[2];
  }
  return out;
}

module.exports = {
  grpc,
  load,
  parseFlags,
  ECHO_INITIAL: 'x-grpc-test-echo-initial',
  ECHO_TRAILING: 'x-grpc-test-echo-trailing-bin',
};
