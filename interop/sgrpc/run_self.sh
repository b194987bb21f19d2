#!/bin/bash
# Runs one interop case (or "all") with sgrpc-interop-client against
# sgrpc-interop-server on 127.0.0.1, on a free port below 32768.
#   run_self.sh SERVER_BIN CLIENT_BIN CASE
# Exit 0 only when the client passed. Every wait is bounded.
# With a fourth argument "tls": both sides use TLS with their default test
# certificates (grpc's testdata server1.pem and ca.pem), name checked
# through --server_host_override=foo.test.google.fr.
# SGRPC_TEST_EMULATOR (e.g. "qemu-s390x -L /usr/s390x-linux-gnu", set by
# scripts/cross) runs both binaries of a cross build.
set -u
emu=${SGRPC_TEST_EMULATOR:-}
server=$1 client=$2 case=$3 mode=${4:-plaintext}
sargs=() cargs=()
if [ "$mode" = tls ]; then
  sargs=(--use_tls=true)
  cargs=(--use_tls=true --use_test_ca=true --server_host_override=foo.test.google.fr)
fi
log=$(mktemp /tmp/sgrpc-interop-self.XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; sleep 0.2; kill -KILL "$pid" 2>/dev/null; fi
  rm -f "$log"
}
trap cleanup EXIT
for attempt in 1 2 3 4 5 6; do
  port=$((20000 + (RANDOM % 12000)))
  $emu "$server" --port="$port" "${sargs[@]}" > "$log" 2>&1 &
  pid=$!
  for i in $(seq 50); do
    grep -q "listening on port" "$log" && break 2
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=
done
if [ -z "$pid" ]; then echo "FAIL: $case: server did not start"; cat "$log"; exit 1; fi
timeout 50 $emu "$client" --server_host=127.0.0.1 --server_port="$port" --test_case="$case" "${cargs[@]}"
rc=$?
if [ $rc -ne 0 ]; then sed 's/^/  server| /' "$log" | tail -20; fi
exit $rc
