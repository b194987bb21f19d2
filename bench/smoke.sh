#!/bin/bash
# ctest smoke test: sgrpc-loadgen makes 100 unary calls and 100 streamed
# messages against the epoll echo server, then 20 unary echoes of 1 MiB
# (sent borrowed both ways: the no-copy DATA path and writev over real
# sockets) and a paced run; every status and every reply must be right.
#   smoke.sh ECHO_SERVER LOADGEN
server=$1
loadgen=$2
# A port below 32768 that nobody holds: try a few pseudo-random ones.
tries=0
while [ $tries -lt 20 ]; do
  port=$(( 20000 + ($$ * 7 + tries * 131) % 9000 ))
  "$server" --port=$port >/dev/null 2>&1 &
  pid=$!
  i=0
  while [ $i -lt 50 ]; do # up to 5 s for the listener
    if ! kill -0 $pid 2>/dev/null; then break; fi
    if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then break; fi
    sleep 0.1
    i=$((i + 1))
  done
  if kill -0 $pid 2>/dev/null; then break; fi
  tries=$((tries + 1))
done
if ! kill -0 $pid 2>/dev/null; then echo "smoke: server did not start"; exit 1; fi
rc=0
"$loadgen" --target=127.0.0.1:$port --mode=unary --connections=2 --concurrency=4 --requests=100 \
  --payload=128 || rc=1
"$loadgen" --target=127.0.0.1:$port --mode=stream --connections=1 --concurrency=2 --requests=100 \
  --payload=1000 || rc=1
"$loadgen" --target=127.0.0.1:$port --mode=unary --connections=1 --concurrency=3 --requests=20 \
  --payload=1048576 || rc=1
"$loadgen" --target=127.0.0.1:$port --mode=paced --connections=20 --interval=0.2 --duration=1 \
  || rc=1
kill $pid
wait $pid 2>/dev/null
exit $rc
