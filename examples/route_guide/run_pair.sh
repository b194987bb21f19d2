#!/bin/sh
# run_pair.sh SERVER CLIENT [client args...]
# Starts SERVER --listen 127.0.0.1:PORT on a random port below 32768
# (another one when the port is taken: exit status 2), runs
# CLIENT --target 127.0.0.1:PORT [client args...], then stops the server
# with SIGTERM (graceful exit) and prints "server exit N". Every wait is
# bounded. Exit status 0 when client and server both exited 0.
# SGRPC_TEST_EMULATOR (e.g. "qemu-s390x -L /usr/s390x-linux-gnu", set by
# scripts/cross) runs both binaries of a cross build.
emu=${SGRPC_TEST_EMULATOR:-}
server=$1
client=$2
shift 2
tmp=$(mktemp -d)
spid=
cleanup() {
  [ -n "$spid" ] && kill -KILL "$spid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

started=0
attempt=0
while [ $attempt -lt 20 ] && [ $started -eq 0 ]; do
  attempt=$((attempt + 1))
  r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
  port=$((20000 + r % 12000))
  $emu "$server" --listen "127.0.0.1:$port" >"$tmp/server.out" 2>&1 &
  spid=$!
  i=0
  while [ $i -lt 100 ]; do # up to 10 s for the server to bind
    if grep -q "listening on port" "$tmp/server.out"; then
      started=1
      break
    fi
    if ! kill -0 "$spid" 2>/dev/null; then
      wait "$spid"
      echo "server exited with $? on port $port:"
      cat "$tmp/server.out"
      spid=
      break
    fi
    sleep 0.1
    i=$((i + 1))
  done
  if [ $started -eq 0 ] && [ -n "$spid" ]; then
    echo "server did not start"
    exit 1
  fi
done
[ $started -eq 1 ] || { echo "no port found"; exit 1; }

timeout 30 $emu "$client" --target "127.0.0.1:$port" "$@"
crc=$?
echo "client exit $crc"

kill -TERM "$spid"
i=0
while kill -0 "$spid" 2>/dev/null && [ $i -lt 100 ]; do # up to 10 s to drain
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
cat "$tmp/server.out"
echo "server exit $src"
[ $crc -eq 0 ] && [ $src -eq 0 ]
