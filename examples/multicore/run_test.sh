#!/bin/bash
# ctest example_multicore: starts sgrpc-multicore-server with 2 loops on a
# port below 32768, makes REQUESTS unary calls over 32 connections with
# sgrpc-loadgen, then sends SIGTERM and checks that
#  - every call succeeded,
#  - the server exited 0 after its graceful shutdown,
#  - both loops served calls ("loop I: N calls", N > 0; the kernel spreads
#    32 connections over 2 listeners: all on one has probability 2^-31),
#  - the loops' counts add up to the calls made.
#   run_test.sh SERVER LOADGEN
set -u
server=$1
loadgen=$2
requests=2000
out=$(mktemp)
trap 'rm -f "$out"; [ -n "${pid:-}" ] && kill -9 "$pid" 2>/dev/null' EXIT
port=
for _ in $(seq 20); do # a port below 32768; another when it is taken
  try=$((20000 + RANDOM % 12000))
  "$server" --loops=2 --port=$try > "$out" 2>&1 &
  pid=$!
  for _ in $(seq 100); do # up to 10 s for "listening on HOST:PORT"
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\) (2 loops)$/\1/p' "$out")
    [ -n "$port" ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] && break
  kill -9 $pid 2>/dev/null
  wait $pid 2>/dev/null
  pid=
done
if [ -z "$port" ]; then
  echo "multicore: server did not start:"
  cat "$out"
  exit 1
fi
result=$(timeout 120 "$loadgen" --target="127.0.0.1:$port" --mode=unary --connections=32 \
  --concurrency=64 --requests=$requests --payload=128 --quiet)
echo "$result"
rc=0
echo "$result" | grep -q "^RESULT ok=$requests errors=0 " || { echo "multicore: calls failed"; rc=1; }
kill -TERM $pid
status=0
timeout 30 tail --pid=$pid -f /dev/null || status=timeout
wait $pid || status=$?
pid=
cat "$out"
[ "$status" = 0 ] || { echo "multicore: server exit status $status after SIGTERM"; rc=1; }
n0=$(sed -n 's/^loop 0: \([0-9]*\) calls$/\1/p' "$out")
n1=$(sed -n 's/^loop 1: \([0-9]*\) calls$/\1/p' "$out")
if [ -z "$n0" ] || [ -z "$n1" ] || [ "$n0" -eq 0 ] || [ "$n1" -eq 0 ]; then
  echo "multicore: both loops must serve calls (loop 0: ${n0:-?}, loop 1: ${n1:-?})"
  rc=1
elif [ $((n0 + n1)) -ne $requests ]; then
  echo "multicore: loops served $((n0 + n1)) calls, $requests made"
  rc=1
fi
[ $rc = 0 ] && echo "multicore: OK (loop 0: $n0 calls, loop 1: $n1 calls, clean exit)"
exit $rc
