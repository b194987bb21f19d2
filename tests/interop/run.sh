#!/bin/bash
# Interop driver: runs a demo.Demo server and a client from two different
# gRPC stacks on 127.0.0.1 and fails when any check fails.
#
#   run.sh py-client BIN_DIR [LOOP] [SEC]        Python grpcio client -> sgrpc-demo-server
#   run.sh go-client BIN_DIR [LOOP] [SEC]        grpc-go client -> sgrpc-demo-server
#   run.sh sgrpc-client BIN_DIR [LOOP] [SEC]     sgrpc-demo-client -> Python grpcio server
#   run.sh sgrpc-client-go BIN_DIR [LOOP] [SEC]  sgrpc-demo-client -> grpc-go server
#   run.sh h2load BIN_DIR [LOOP] [SEC]           h2load (nghttp2) load -> sgrpc-demo-server
#
# BIN_DIR holds sgrpc-demo-server and sgrpc-demo-client; the grpc-go peers
# are taken from $GO_DEMO_DIR (default BIN_DIR/interop-go; ctest sets it), built there by
# tests/interop/go/build.sh. LOOP (epoll,
# libuv, kqueue; default epoll) is the sgrpc side's event loop. SEC is
# plaintext (default) or tls: mutual TLS with throwaway certificates made
# by tests/tls/make_certs.sh into the run's temporary directory (h2load,
# which has no client certificate, gets a server-only TLS server), and
# each side must see the other's certificate. Uses /usr/bin/python3
# (Debian's python3-grpcio, python3-grpc-tools), never the first on PATH.
set -u
mode=${1:?usage: run.sh MODE BIN_DIR [LOOP] [plaintext|tls]}
bin=${2:?usage: run.sh MODE BIN_DIR [LOOP] [plaintext|tls]}
loop=${3:-epoll}
sec=${4:-plaintext}
go_dir=${GO_DEMO_DIR:-$bin/interop-go}
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1  # keep the tree free of __pycache__
work=$(mktemp -d /tmp/sgrpc-interop.XXXXXX)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "interop: FAIL ($loop, $sec): $*"; [ -f "$work/server.log" ] && sed 's/^/  server| /' "$work/server.log" | tail -40; exit 1; }

# Starts "$@ --listen 127.0.0.1:PORT" on a free port below 32768; waits
# for its "listening" line. Sets port and server_pid.
start_server() {
  local attempt i
  for attempt in 1 2 3 4 5 6; do
    port=$((25000 + (RANDOM % 7000)))
    "$@" --listen "127.0.0.1:$port" > "$work/server.log" 2>&1 &
    server_pid=$!
    for i in $(seq 100); do
      grep -q "listening" "$work/server.log" && return 0
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null
    server_pid=
  done
  fail "server did not start: $*"
}

# Sends SIGTERM and waits (bounded) for a clean exit.
stop_server() {
  local i rc
  kill -TERM "$server_pid" 2>/dev/null
  for i in $(seq 100); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$server_pid" 2>/dev/null; then fail "server still running 10 s after SIGTERM"; fi
  wait "$server_pid"; rc=$?
  server_pid=
  [ "$rc" = 0 ] || fail "server exited with status $rc"
}

# Waits (bounded) for a server that was told to stop to exit cleanly.
await_server_exit() {
  local i rc
  for i in $(seq 100); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$server_pid" 2>/dev/null; then fail "server still running 10 s after SIGTERM"; fi
  wait "$server_pid"; rc=$?
  server_pid=
  [ "$rc" = 0 ] || fail "server exited with status $rc"
}

case "$sec" in
plaintext)
  srv_tls=() srv_tls_only=() cli_tls=() py_tls=() py_srv_tls=() scheme=http ;;
tls)
  certs=$work/certs
  mkdir -p "$certs"
  sh "$here/../tls/make_certs.sh" "$certs" > /dev/null 2>&1 || fail "make_certs.sh failed"
  # Mutual TLS: the client must show a certificate from the test CA.
  srv_tls=(--tls-cert "$certs/server.pem" --tls-key "$certs/server.key" --tls-ca "$certs/ca.pem")
  srv_tls_only=(--tls-cert "$certs/server.pem" --tls-key "$certs/server.key")
  cli_tls=(--tls-ca "$certs/ca.pem" --tls-cert "$certs/client.pem" --tls-key "$certs/client.key")
  py_tls=(--ca "$certs/ca.pem" --cert "$certs/client.pem" --key "$certs/client.key")
  py_srv_tls=(--ca "$certs/ca.pem" --cert "$certs/server.pem" --key "$certs/server.key")
  scheme=https ;;
*)
  echo "usage: $0 MODE BIN_DIR [LOOP] [plaintext|tls]"; exit 2 ;;
esac
# The sgrpc programs must have this loop (a build without libuv has none).
"$bin/sgrpc-demo-server" --help 2>&1 | grep -q -- "--loop [a-z|]*\b$loop\b" ||
  fail "sgrpc-demo-server has no --loop $loop"

case "$mode" in
py-client|sgrpc-client)
  "$py" -c 'import grpc, grpc_tools' 2> /dev/null ||
    fail "$py lacks grpcio: apt-get install python3-grpcio python3-grpc-tools" ;;
esac
case "$mode" in
py-client)
  start_server "$bin/sgrpc-demo-server" --loop "$loop" "${srv_tls[@]}"
  echo "interop: Python grpcio $($py -c 'import grpc; print(grpc.__version__)') client -> sgrpc-demo-server ($loop loop, $sec) on 127.0.0.1:$port"
  timeout 120 "$py" "$here/py_client.py" --target "127.0.0.1:$port" "${py_tls[@]}" --server-pid "$server_pid" --server-log "$work/server.log" || fail "python client reported failures"
  # The client's graceful-shutdown check sent one SIGTERM: the server
  # must exit by itself once the in-flight call is done.
  await_server_exit
  grep -q "($loop loop)" "$work/server.log" || fail "server did not run on the $loop loop"
  # What the server saw must match what the client did.
  grep -Eq "Sleep ended (DEADLINE_EXCEEDED|CANCELLED)" "$work/server.log" || fail "server did not see the deadline call end"
  grep -q "Count ended CANCELLED" "$work/server.log" || fail "server did not see the client's cancel"
  grep -q "unknown method /demo.Demo/NoSuchMethod -> UNIMPLEMENTED" "$work/server.log" || fail "no UNIMPLEMENTED in server log"
  # py_client.py held Chat calls open across the signal and ended them
  # only after this line appeared: they must end OK after it.
  awk '/graceful shutdown/ {g = 1} g && /Chat ended OK/ {ok = 1} END {exit !ok}' "$work/server.log" ||
    fail "in-flight call did not finish OK after the shutdown began"
  grep -q "graceful shutdown" "$work/server.log" || fail "server did not shut down gracefully"
  if [ "$sec" = tls ]; then
    grep -q 'call from client certificate ".*CN=sgrpc-test-client' "$work/server.log" ||
      fail "the sgrpc handler did not see grpcio's client certificate"
  fi
  ;;
go-client)
  [ -x "$go_dir/go-demo-client" ] || fail "no $go_dir/go-demo-client (tests/interop/go/build.sh)"
  start_server "$bin/sgrpc-demo-server" --loop "$loop" "${srv_tls[@]}"
  echo "interop: grpc-go client -> sgrpc-demo-server ($loop loop, $sec) on 127.0.0.1:$port"
  timeout 60 "$go_dir/go-demo-client" --target "127.0.0.1:$port" "${py_tls[@]}" || fail "grpc-go client reported failures"
  stop_server
  grep -q "($loop loop)" "$work/server.log" || fail "server did not run on the $loop loop"
  grep -Eq "Sleep ended (DEADLINE_EXCEEDED|CANCELLED)" "$work/server.log" || fail "server did not see the deadline call end"
  grep -q "Count ended CANCELLED" "$work/server.log" || fail "server did not see the client's cancel"
  if [ "$sec" = tls ]; then
    grep -q 'call from client certificate ".*CN=sgrpc-test-client' "$work/server.log" ||
      fail "the sgrpc handler did not see grpc-go's client certificate"
  fi
  ;;
sgrpc-client|sgrpc-client-go)
  if [ "$mode" = sgrpc-client-go ]; then
    [ -x "$go_dir/go-demo-server" ] || fail "no $go_dir/go-demo-server (tests/interop/go/build.sh)"
    start_server "$go_dir/go-demo-server" "${py_srv_tls[@]}"
    peer_name=grpc-go
  else
    start_server "$py" "$here/py_server.py" "${py_srv_tls[@]}"
    peer_name="Python grpcio"
  fi
  echo "interop: sgrpc-demo-client ($loop loop, $sec) -> $peer_name server on 127.0.0.1:$port"
  timeout 60 "$bin/sgrpc-demo-client" --loop "$loop" --target "127.0.0.1:$port" "${cli_tls[@]}" > "$work/client.log" 2>&1
  rc=$?
  cat "$work/client.log"
  [ "$rc" = 0 ] || fail "sgrpc-demo-client failed"
  grep -q "($loop loop)" "$work/client.log" || fail "client did not run on the $loop loop"
  stop_server
  if [ "$sec" = tls ]; then
    grep -q "peer certificate CN=sgrpc-test-client" "$work/server.log" ||
      fail "$peer_name did not see the sgrpc client's certificate"
  fi
  ;;
h2load)
  command -v h2load > /dev/null || { echo "interop: h2load missing (nghttp2-client)"; exit 1; }
  start_server "$bin/sgrpc-demo-server" --loop "$loop" --quiet "${srv_tls_only[@]}"
  echo "interop: h2load -> sgrpc-demo-server ($loop loop, $sec) on 127.0.0.1:$port"
  # One framed demo.Hello{name:"load"}: flag 0, length 6, then the message.
  printf '\x00\x00\x00\x00\x06\x0a\x04load' > "$work/hello.bin"
  timeout 60 h2load -n 2000 -c 4 -m 16 -d "$work/hello.bin" \
    -H 'content-type: application/grpc' -H 'te: trailers' \
    "$scheme://127.0.0.1:$port/demo.Demo/Say" > "$work/h2load.txt" 2>&1
  grep -E "^(finished|requests|status codes|TLS Protocol|Application protocol)" "$work/h2load.txt"
  grep -Eq "requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored" "$work/h2load.txt" || fail "h2load: not all requests succeeded"
  grep -Eq "status codes: 2000 2xx" "$work/h2load.txt" || fail "h2load: not all 2xx"
  if [ "$sec" = tls ]; then
    grep -q "Application protocol: h2" "$work/h2load.txt" || fail "h2load: no h2 over TLS"
  fi
  stop_server
  ;;
*)
  echo "usage: $0 py-client|go-client|sgrpc-client|sgrpc-client-go|h2load BIN_DIR [LOOP] [plaintext|tls]"; exit 2 ;;
esac
echo "interop: $mode ($loop, $sec) OK"
