#!/bin/bash
# sgrpc behind an existing HTTP/2 proxy, on 127.0.0.1:
#
#   run_proxy.sh PROXY MODE SERVER_BIN CLIENT_BIN
#
# PROXY: haproxy (Debian's HAProxy: h2c frontend "proto h2", backends
#        "proto h2", round robin, TCP health checks, redispatch on a
#        refused connection) or nghttpx (nghttp2-proxy: no-tls frontend,
#        backends ";;proto=h2", round robin). The configuration is written
#        here (docs/channel-proxies.md shows it) and the proxy runs in the
#        foreground on a free port below 32768, in front of three
#        SERVER_BIN backends (sgrpc-interop-server; ids s1, s2, s3).
# MODE:
#   cases  CLIENT_BIN is an interop client (sgrpc-interop-client or
#          grpc-go's go-interop-client): every standard interop case
#          (unary, the three streaming kinds, metadata and trailers, status
#          codes and messages, deadlines, cancellation, compression) must
#          pass through the proxy.
#   kill   CLIENT_BIN is sgrpc-lb-client: $LB_CALLS unary calls (default
#          4500), $LB_CONCURRENCY in flight (default 8), the client
#          SIGKILLs backend s3 after $LB_KILL_AFTER (default 3000). Passes
#          when the calls before the kill are spread over s1..s3 and those
#          after over s1 and s2 (within 10%), no call started after the
#          kill failed, and no more calls failed than were in flight at the
#          kill; the failed ones are listed. HAProxy runs with
#          "retry-on conn-failure empty-response".
#   kill-window  (nghttpx) as kill, but nghttpx has no request retries:
#          until it notices the dead backend it keeps sending it calls,
#          which fail (RST_STREAM INTERNAL_ERROR). Passes when only calls
#          started within $LB_KILL_WINDOW (default 1000) calls of the kill
#          failed and every later call succeeded.
#   kill-noreplay  (haproxy only) as kill, with HAProxy's default
#          "retry-on conn-failure": HAProxy may then send a new call on its
#          connection to the dead backend before it notices the loss and
#          refuse the stream (REFUSED_STREAM); such calls, which the sgrpc
#          client marks retry_safe, may fail in any phase; others only
#          while in flight at the kill.
# A missing program exits 77 (ctest: skipped).
set -u
here=$(cd "$(dirname "$0")" && pwd)
usage="usage: run_proxy.sh haproxy|nghttpx cases|kill|kill-noreplay|kill-window SERVER_BIN CLIENT_BIN"
proxy=${1:?$usage} mode=${2:?$usage} server=${3:?$usage} client=${4:?$usage}
case $proxy in
haproxy) proxy_bin=$(command -v haproxy || echo /usr/sbin/haproxy) ;;
nghttpx) proxy_bin=$(command -v nghttpx || echo /usr/sbin/nghttpx) ;;
*) echo "$usage"; exit 2 ;;
esac
for p in "$proxy_bin" "$server" "$client"; do
  [ -x "$p" ] || { echo "run_proxy: $p not installed or not built: skipped"; exit 77; }
done
haproxy_retry_on="conn-failure empty-response"
[ "$mode" = kill-noreplay ] && haproxy_retry_on=conn-failure
calls=${LB_CALLS:-4500} kill_after=${LB_KILL_AFTER:-3000} conc=${LB_CONCURRENCY:-8}
lb_work=$(mktemp -d "${TMPDIR:-/tmp}/sgrpc-proxy.XXXXXX")
. "$here/lib.sh"
proxy_pid=
stop_proxy() {
  [ -n "$proxy_pid" ] || return 0
  kill -TERM "$proxy_pid" 2>/dev/null
  for _ in $(seq 30); do kill -0 "$proxy_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$proxy_pid" 2>/dev/null
  wait "$proxy_pid" 2>/dev/null
  proxy_pid=
}
cleanup() {
  stop_proxy
  lb_stop_backends > /dev/null
  rm -rf "$lb_work"
}
trap cleanup EXIT
lb_fail() {
  echo "run_proxy: FAIL ($proxy, $mode): $*"
  for f in "$lb_work"/*.log; do [ -f "$f" ] && tail -n 8 "$f" | sed "s#^#  $(basename "$f")| #"; done
  exit 1
}
# true when something accepts connections on 127.0.0.1:$1
accepting() { (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }

# haproxy_config PORT: the configuration of the tests (docs/channel-proxies.md).
haproxy_config() {
  local k
  cat <<CFG
global
    nbthread 1
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    # a refused connection (a dead backend not yet marked down) is retried
    # on another server, and so (unless MODE is kill-noreplay) is a request
    # whose backend connection closed before any response byte came
    retries 3
    retry-on $haproxy_retry_on
    option redispatch 1
frontend grpc_in
    bind 127.0.0.1:$1 proto h2
    default_backend sgrpc_servers
backend sgrpc_servers
    balance roundrobin
CFG
  for k in "${!lb_ports[@]}"; do
    echo "    server ${lb_ids[$k]} 127.0.0.1:${lb_ports[$k]} proto h2 check inter 200ms fall 1 rise 1"
  done
}

# start_proxy: on a free port below 32768 (a port something else holds is
# skipped; a proxy that cannot bind exits and the next port is tried).
# Sets proxy_port and proxy_pid.
start_proxy() {
  local k
  local -a args
  for _ in 1 2 3 4 5 6; do
    proxy_port=$((20000 + RANDOM % 12000))
    accepting "$proxy_port" && continue
    case $proxy in
    haproxy)
      haproxy_config "$proxy_port" > "$lb_work/haproxy.cfg"
      args=(-db -f "$lb_work/haproxy.cfg") ;;
    nghttpx)
      # --conf=/dev/null: no /etc/nghttpx/nghttpx.conf; one worker
      args=(--conf=/dev/null --workers=1 --frontend="127.0.0.1,$proxy_port;no-tls"
            --errorlog-file=/dev/stderr --accesslog-file=/dev/null --no-ocsp)
      for k in "${!lb_ports[@]}"; do args+=(--backend="127.0.0.1,${lb_ports[$k]};;proto=h2"); done ;;
    esac
    echo "run_proxy: $proxy_bin ${args[*]}" > "$lb_work/proxy.log"
    [ "$proxy" = haproxy ] && sed 's/^/  | /' "$lb_work/haproxy.cfg" >> "$lb_work/proxy.log"
    "$proxy_bin" "${args[@]}" >> "$lb_work/proxy.log" 2>&1 &
    proxy_pid=$!
    for _ in $(seq 100); do
      kill -0 "$proxy_pid" 2>/dev/null || break
      accepting "$proxy_port" && return 0
      sleep 0.1
    done
    kill -KILL "$proxy_pid" 2>/dev/null; wait "$proxy_pid" 2>/dev/null
    proxy_pid=
  done
  lb_fail "$proxy did not start"
}

t0=$(date +%s%N)
lb_start_backends "$server" 3
start_proxy
echo "run_proxy: $proxy on 127.0.0.1:$proxy_port -> $(lb_addrs)"
case $mode in
cases)
  cases="empty_unary large_unary client_streaming server_streaming ping_pong empty_stream
    timeout_on_sleeping_server cancel_after_begin cancel_after_first_response custom_metadata
    status_code_and_message special_status_message unimplemented_method unimplemented_service
    client_compressed_unary server_compressed_unary client_compressed_streaming
    server_compressed_streaming"
  npass=0 nfail=0 nlim=0
  for c in $cases; do
    timeout 40 "$client" --server_host=127.0.0.1 --server_port="$proxy_port" --test_case="$c" \
      > "$lb_work/case.out" 2> "$lb_work/client.log"
    rc=$?
    line=$(tail -n 1 "$lb_work/case.out")
    if [ $rc = 0 ]; then
      npass=$((npass + 1)); echo "  $c: PASS"
    elif [ $rc = 3 ]; then
      # grpc-go's client: a case grpc-go 1.33 cannot perform (interop/peers/LIMITATIONS.md)
      nlim=$((nlim + 1)); echo "  $c: not performed by this client: $line"
    else
      nfail=$((nfail + 1)); echo "  $c: FAIL (exit $rc): $line $(tail -n 2 "$lb_work/client.log" | tr '\n' ' ')"
    fi
  done
  echo "run_proxy: $npass passed, $nfail failed, $nlim not performed by the client"
  if [ $nfail != 0 ] || [ $npass = 0 ]; then lb_fail "interop cases failed through $proxy"; fi
  ;;
kill|kill-noreplay|kill-window)
  [ "$mode" != kill-noreplay ] || [ "$proxy" = haproxy ] || { echo "$usage"; exit 2; }
  timeout 150 "$client" --target="127.0.0.1:$proxy_port" --calls="$calls" --concurrency="$conc" \
    --kill_pid="${lb_pids[2]}" --kill_after="$kill_after" --warmup_backends=3 > "$lb_work/client.out" 2> "$lb_work/client.log"
  rc=$?
  cat "$lb_work/client.out"
  [ $rc = 124 ] && lb_fail "client timed out"
  case $mode in
  kill) lb_check "$lb_work/client.out" s3 "$conc" 1 ;;
  kill-noreplay) lb_check "$lb_work/client.out" s3 "$conc" 2 ;;
  kill-window) lb_check "$lb_work/client.out" s3 "$conc" "window:$((kill_after + ${LB_KILL_WINDOW:-1000}))" ;;
  esac
  lb_reap_killed 2 || lb_fail "backend s3 was not killed by SIGKILL"
  ;;
*)
  echo "$usage"; exit 2 ;;
esac
kill -0 "$proxy_pid" 2>/dev/null || lb_fail "$proxy exited during the run"
stop_proxy
lb_stop_backends || lb_fail "a backend did not shut down cleanly"
echo "run_proxy: PASS ($proxy, $mode) in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
