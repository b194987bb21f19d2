#!/bin/sh
# run_example_services.sh OUTDIR SERVER_CMD... -- PEER_ARGS...
# Starts SERVER_CMD with the listen address appended as "--listen
# 127.0.0.1:PORT" (or "--port=PORT" when SERVER_CMD's first word ends in
# interop-server), on a random port below 32768 (retried when taken),
# waits for its "listening on" line, runs example_services_peer.py PORT
# OUTDIR PEER_ARGS..., then stops the server with SIGTERM. Every wait is
# bounded. Exit status: the peer's, or 1 when the server misbehaves.
# SGRPC_TEST_EMULATOR (set by scripts/cross) runs the server of a cross
# build; the grpcio peer stays native.
here=$(cd "$(dirname "$0")" && pwd)
emu=${SGRPC_TEST_EMULATOR:-}
outdir=$1
shift
server=
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  server="$server $1"
  shift
done
[ "$1" = "--" ] && shift
tmp=$(mktemp -d)
spid=
cleanup() {
  [ -n "$spid" ] && kill -KILL "$spid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
first=$(echo $server | cut -d' ' -f1)
started=0
attempt=0
while [ $attempt -lt 20 ] && [ $started -eq 0 ]; do
  attempt=$((attempt + 1))
  r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
  port=$((20000 + r % 12000))
  case "$first" in
  *interop-server) $emu $server "--port=$port" >"$tmp/server.out" 2>&1 & ;;
  *) $emu $server --listen "127.0.0.1:$port" >"$tmp/server.out" 2>&1 & ;;
  esac
  spid=$!
  i=0
  while [ $i -lt 300 ]; do # up to 30 s (qemu starts slowly)
    if grep -q "listening on" "$tmp/server.out"; then
      started=1
      break
    fi
    if ! kill -0 "$spid" 2>/dev/null; then
      wait "$spid"
      spid=
      break
    fi
    sleep 0.1
    i=$((i + 1))
  done
  if [ $started -eq 0 ] && [ -n "$spid" ]; then
    echo "server did not start"
    cat "$tmp/server.out"
    exit 1
  fi
done
[ $started -eq 1 ] || { echo "no port found"; cat "$tmp/server.out"; exit 1; }
timeout 60 /usr/bin/python3 "$here/example_services_peer.py" "$port" "$outdir" "$@"
prc=$?
kill -TERM "$spid"
i=0
while kill -0 "$spid" 2>/dev/null && [ $i -lt 100 ]; do
  sleep 0.1
  i=$((i + 1))
done
if kill -0 "$spid" 2>/dev/null; then
  echo "server did not exit after SIGTERM"
  exit 1
fi
wait "$spid"
src=$?
spid=
echo "--- server output"
cat "$tmp/server.out"
echo "server exit $src"
if grep -q "sgrpc reflection:" "$tmp/server.out"; then
  echo "the server warned about reflection"
  exit 1
fi
[ $prc -eq 0 ] && [ $src -eq 0 ]
