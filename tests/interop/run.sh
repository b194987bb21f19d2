#!/bin/bash
# Interop driver: runs a demo.Demo server and a client from two different
# gRPC stacks on 127.0.0.1 and fails when any check fails.
#
#   run.sh py-client BIN_DIR   Python grpcio client -> sgrpc-demo-server
#   run.sh sgrpc-client BIN_DIR  sgrpc-demo-client -> Python grpcio server
#   run.sh h2load BIN_DIR      h2load (nghttp2) load -> sgrpc-demo-server
#
# BIN_DIR holds sgrpc-demo-server and sgrpc-demo-client. Uses /usr/bin/python3
# (Debian's python3-grpcio, python3-grpc-tools), never the first on PATH.
set -u
mode=$1
bin=$2
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

fail() { echo "interop: FAIL: $*"; [ -f "$work/server.log" ] && sed 's/^/  server| /' "$work/server.log" | tail -40; exit 1; }

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

case "$mode" in
py-client|sgrpc-client)
  "$py" -c 'import grpc, grpc_tools' 2> /dev/null ||
    fail "$py lacks grpcio: apt-get install python3-grpcio python3-grpc-tools" ;;
esac
case "$mode" in
py-client)
  start_server "$bin/sgrpc-demo-server"
  echo "interop: Python grpcio $($py -c 'import grpc; print(grpc.__version__)') client -> sgrpc-demo-server on 127.0.0.1:$port"
  timeout 120 "$py" "$here/py_client.py" --target "127.0.0.1:$port" --server-pid "$server_pid" --server-log "$work/server.log" || fail "python client reported failures"
  # The client's graceful-shutdown check sent one SIGTERM: the server
  # must exit by itself once the in-flight call is done.
  await_server_exit
  # What the server saw must match what the client did.
  grep -Eq "Sleep ended (DEADLINE_EXCEEDED|CANCELLED)" "$work/server.log" || fail "server did not see the deadline call end"
  grep -q "Count ended CANCELLED" "$work/server.log" || fail "server did not see the client's cancel"
  grep -q "unknown method /demo.Demo/NoSuchMethod -> UNIMPLEMENTED" "$work/server.log" || fail "no UNIMPLEMENTED in server log"
  awk '/graceful shutdown/ {g = 1} g && /Sleep ended OK/ {ok = 1} END {exit !ok}' "$work/server.log" ||
    fail "in-flight call did not finish OK after the shutdown began"
  grep -q "graceful shutdown" "$work/server.log" || fail "server did not shut down gracefully"
  ;;
sgrpc-client)
  start_server "$py" "$here/py_server.py"
  echo "interop: sgrpc-demo-client -> Python grpcio server on 127.0.0.1:$port"
  timeout 60 "$bin/sgrpc-demo-client" --target "127.0.0.1:$port" || fail "sgrpc-demo-client failed"
  stop_server
  ;;
h2load)
  command -v h2load > /dev/null || { echo "interop: h2load missing (nghttp2-client)"; exit 1; }
  start_server "$bin/sgrpc-demo-server" --quiet
  # One framed demo.Hello{name:"load"}: flag 0, length 6, then the message.
  printf '\x00\x00\x00\x00\x06\x0a\x04load' > "$work/hello.bin"
  timeout 60 h2load -n 2000 -c 4 -m 16 -d "$work/hello.bin" \
    -H 'content-type: application/grpc' -H 'te: trailers' \
    "http://127.0.0.1:$port/demo.Demo/Say" > "$work/h2load.txt" 2>&1
  cat "$work/h2load.txt" | grep -E "^(finished|requests|status codes)"
  grep -Eq "requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored" "$work/h2load.txt" || fail "h2load: not all requests succeeded"
  grep -Eq "status codes: 2000 2xx" "$work/h2load.txt" || fail "h2load: not all 2xx"
  stop_server
  ;;
*)
  echo "usage: $0 py-client|sgrpc-client|h2load BIN_DIR"; exit 2 ;;
esac
echo "interop: $mode OK"
