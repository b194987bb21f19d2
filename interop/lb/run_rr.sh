#!/bin/bash
# round_robin across three backends, one client channel, on 127.0.0.1:
#
#   run_rr.sh SERVER_BIN CLIENT_CMD [ARG...]
#
# Starts three SERVER_BIN backends (ids s1, s2, s3; see lib.sh), then runs
#   CLIENT_CMD ARG... --target=ipv4:127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3
#       --calls=$LB_CALLS --concurrency=$LB_CONCURRENCY
#       --kill_pid=<pid of s3> --kill_after=$LB_KILL_AFTER
# (the client SIGKILLs s3 itself once that many calls completed, so the
# kill lands mid-run with calls in flight, without any timing guess).
# Passes when every call succeeded (the clients wait for ready and retry
# UNAVAILABLE), the calls before the kill are spread over s1..s3 within
# 10%, and the calls after it over s1 and s2 within 10%.
# Defaults: LB_CALLS=4500, LB_KILL_AFTER=3000, LB_CONCURRENCY=8.
# A missing SERVER_BIN or CLIENT_CMD exits 77 (ctest: skipped).
set -u
here=$(cd "$(dirname "$0")" && pwd)
server=${1:?usage: run_rr.sh SERVER_BIN CLIENT_CMD [ARG...]}
shift
[ $# -gt 0 ] || { echo "usage: run_rr.sh SERVER_BIN CLIENT_CMD [ARG...]"; exit 2; }
for p in "$server" "$1"; do
  [ -x "$p" ] || { echo "run_rr: $p not built: skipped"; exit 77; }
done
calls=${LB_CALLS:-4500} kill_after=${LB_KILL_AFTER:-3000} conc=${LB_CONCURRENCY:-8}
lb_work=$(mktemp -d "${TMPDIR:-/tmp}/sgrpc-lb.XXXXXX")
. "$here/lib.sh"
cleanup() { lb_stop_backends > /dev/null; rm -rf "$lb_work"; }
trap cleanup EXIT
lb_fail() {
  echo "run_rr: FAIL: $*"
  for f in "$lb_work"/*.log; do [ -f "$f" ] && tail -n 5 "$f" | sed "s#^#  $(basename "$f")| #"; done
  exit 1
}

t0=$(date +%s%N)
lb_start_backends "$server" 3
target="ipv4:$(lb_addrs)"
echo "run_rr: $(basename "$server") x3 on $target; client: $*"
timeout 120 "$@" --target="$target" --calls="$calls" --concurrency="$conc" \
  --kill_pid="${lb_pids[2]}" --kill_after="$kill_after" --warmup_backends=3 > "$lb_work/client.out" 2> "$lb_work/client.log"
rc=$?
cat "$lb_work/client.out"
[ $rc = 124 ] && lb_fail "client timed out"
lb_check "$lb_work/client.out" s3 "$conc" 0
# s3 must really be gone (killed by the client, not exited by itself)
lb_reap_killed 2 || lb_fail "backend s3 was not killed by SIGKILL"
[ $rc = 0 ] || lb_fail "client exit status $rc"
lb_stop_backends || lb_fail "a backend did not shut down cleanly"
echo "run_rr: PASS in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
