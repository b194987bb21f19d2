#!/bin/bash
# Starts or stops a set of load-balancing backends by hand (the tests use
# the same functions, lib.sh):
#
#   backends.sh start SERVER_BIN N DIR   N backends (ids s1..sN) on
#                                        kernel-chosen 127.0.0.1 ports; logs
#                                        and pids in DIR; prints the target
#                                        "ipv4:127.0.0.1:P1,127.0.0.1:P2,..."
#   backends.sh stop DIR                 SIGTERM, bounded wait, SIGKILL
#
# SERVER_BIN: sgrpc-interop-server, go-lb-server (interop/lb/go), or any
# program taking --port=P --server_id=ID that prints "listening on port N"
# (P is picked below 32768; see lib.sh).
set -u
here=$(cd "$(dirname "$0")" && pwd)
usage() { echo "usage: backends.sh start SERVER_BIN N DIR | stop DIR" >&2; exit 2; }
lb_fail() { echo "backends: $*" >&2; exit 1; }
case ${1:-} in
start)
  [ $# = 4 ] || usage
  mkdir -p "$4" && lb_work=$(cd "$4" && pwd) || exit 1
  . "$here/lib.sh"
  lb_start_backends "$2" "$3"
  printf '%s\n' "${lb_pids[@]}" > "$lb_work/pids"
  echo "ipv4:$(lb_addrs)"
  ;;
stop)
  if [ $# != 2 ] || [ ! -f "$2/pids" ]; then usage; fi
  pids=$(cat "$2/pids")
  # shellcheck disable=SC2086 # one word per pid
  kill -TERM $pids 2>/dev/null
  for p in $pids; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  rm -f "$2/pids"
  ;;
*) usage ;;
esac
