#!/bin/bash
# Runs every interop case of each client against each server, plaintext and
# TLS, on 127.0.0.1 only, and prints one line per cell, e.g.
#   go-client -> python-server [tls] large_unary: PASS
# then the known limitations met, then a last line "N passed, M failed".
# Exits non-zero on any failure. Listed limitations (peers/LIMITATIONS.md)
# that do not pass are printed but not counted.
#
# usage: run_matrix.sh "CLIENTS" "SERVERS" [BIN_DIR...]
#   CLIENTS, SERVERS: space-separated names (python go cpp node, or any NAME
#   with NAME-client / NAME-server in a BIN_DIR). BIN_DIRs default to
#   build-peers/bin (made by build_peers.sh).
# env: CASES (space-separated subset), MODES ("plaintext tls"),
#      CASE_TIMEOUT (seconds per case, default 30),
#      TEST_CERTS (a directory holding ca.pem, server1.pem and server1.key,
#      such as gRPC's own testdata: used instead of a CA made here, for
#      programs that trust only those files).
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
clients=${1:?usage: run_matrix.sh CLIENTS SERVERS [BIN_DIR...]}
servers=${2:?usage: run_matrix.sh CLIENTS SERVERS [BIN_DIR...]}
shift 2
bindirs=("$@")
[ ${#bindirs[@]} -gt 0 ] || bindirs=("$repo/build-peers/bin")
all_cases="empty_unary large_unary client_streaming server_streaming ping_pong
  empty_stream timeout_on_sleeping_server cancel_after_begin
  cancel_after_first_response custom_metadata status_code_and_message
  special_status_message unimplemented_method unimplemented_service
  client_compressed_unary server_compressed_unary client_compressed_streaming
  server_compressed_streaming"
cases=${CASES:-$all_cases}
modes=${MODES:-plaintext tls}
case_timeout=${CASE_TIMEOUT:-30}
limits_file=$here/peers/LIMITATIONS.md

work=$(mktemp -d "${TMPDIR:-/tmp}/sgrpc-matrix.XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    sleep 0.5
    kill -KILL "$server_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${TEST_CERTS:-}" ]; then
  mkdir -p "$work/certs"
  cp "$TEST_CERTS/ca.pem" "$work/certs/ca.pem" &&
    cp "$TEST_CERTS/server1.pem" "$work/certs/server.pem" &&
    cp "$TEST_CERTS/server1.key" "$work/certs/server.key" ||
    { echo "run_matrix: TEST_CERTS=$TEST_CERTS lacks ca.pem, server1.pem or server1.key"; exit 1; }
else
  "$here/certs.sh" "$work/certs" || { echo "run_matrix: certs.sh failed"; exit 1; }
fi

find_bin() {
  local d
  for d in "${bindirs[@]}"; do
    [ -x "$d/$1" ] && { echo "$d/$1"; return 0; }
  done
  return 1
}

# limitation PEER CASE -> prints the reason when the table lists it.
limitation() {
  awk -F'|' -v peer="$1" -v c="$2" '
    { p=$2; k=$3; r=$4; gsub(/^ +| +$/, "", p); gsub(/^ +| +$/, "", k); gsub(/^ +| +$/, "", r)
      if (p == peer && k == c) { print r; exit } }' "$limits_file"
}

# port_listening PORT: true when something listens on 127.0.0.1:PORT.
port_listening() {
  [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
}

# start_server BIN MODE: starts it on a free port below 32768 and waits
# (bounded, 15 s) for its "listening" line or, for servers that print none
# (the official Ruby one), for the port to be listening. A port already
# taken is skipped. Sets port and server_pid.
start_server() {
  local bin=$1 mode=$2 attempt i
  local -a tls=()
  [ "$mode" = tls ] && tls=(--use_tls=true --tls_cert_file="$work/certs/server.pem"
                            --tls_key_file="$work/certs/server.key")
  for attempt in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 12000))
    port_listening "$port" && continue
    "$bin" --port="$port" "${tls[@]}" > "$work/server.log" 2>&1 &
    server_pid=$!
    for i in $(seq 150); do
      grep -q listening "$work/server.log" 2>/dev/null && return 0
      kill -0 "$server_pid" 2>/dev/null || break
      port_listening "$port" && return 0
      sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null
    server_pid=
  done
  return 1
}

stop_server() {
  local i
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null
  for i in $(seq 50); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$server_pid" 2>/dev/null
  wait "$server_pid" 2>/dev/null
  server_pid=
}

passed=0 failed=0 limited=0
declare -A pair_pass pair_fail pair_lim
limit_lines=()
t0=$(date +%s)
for s in $servers; do
  sbin=$(find_bin "$s-server") || { echo "run_matrix: no $s-server in ${bindirs[*]}"; failed=$((failed + 1)); continue; }
  for mode in $modes; do
    if ! start_server "$sbin" "$mode"; then
      echo "$s-server [$mode]: FAIL: server did not start: $(tail -3 "$work/server.log" | tr '\n' ' ')"
      failed=$((failed + 1))
      continue
    fi
    for c in $clients; do
      cbin=$(find_bin "$c-client") || { echo "run_matrix: no $c-client in ${bindirs[*]}"; failed=$((failed + 1)); continue; }
      key="$c-client -> $s-server"
      for tc in $cases; do
        if ! kill -0 "$server_pid" 2>/dev/null; then
          echo "$s-server [$mode]: server died; restarting: $(tail -3 "$work/server.log" | tr '\n' ' ')"
          failed=$((failed + 1))
          start_server "$sbin" "$mode" || { echo "$s-server [$mode]: restart failed"; break; }
        fi
        args=(--server_host=127.0.0.1 --server_port="$port" --test_case="$tc")
        [ "$mode" = tls ] && args+=(--use_tls=true --use_test_ca=true
          --ca_file="$work/certs/ca.pem" --server_host_override=foo.test.google.fr)
        out=$(timeout -k 5 "$case_timeout" "$cbin" "${args[@]}" 2>"$work/client.err")
        rc=$?
        line=$(printf '%s' "$out" | tail -1)
        [ "$rc" = 124 ] && line="timed out after ${case_timeout}s"
        [ -n "$line" ] || line="exit status $rc: $(tail -2 "$work/client.err" | tr '\n' ' ')"
        cell="$key [$mode] $tc"
        if [ "$rc" = 0 ]; then
          echo "$cell: PASS"
          passed=$((passed + 1)); pair_pass[$key]=$(( ${pair_pass[$key]:-0} + 1 ))
          continue
        fi
        why=$(limitation "$c-client" "$tc")
        who="$c-client"
        if [ -z "$why" ]; then why=$(limitation "$s-server" "$tc"); who="$s-server"; fi
        if [ -n "$why" ]; then
          echo "$cell: LIMITATION ($who) [$line]"
          limit_lines+=("$cell: $who: $why")
          limited=$((limited + 1)); pair_lim[$key]=$(( ${pair_lim[$key]:-0} + 1 ))
        else
          echo "$cell: FAIL: $line"
          failed=$((failed + 1)); pair_fail[$key]=$(( ${pair_fail[$key]:-0} + 1 ))
        fi
      done
    done
    stop_server
  done
done
t1=$(date +%s)

echo
echo "per pair (plaintext + tls): passed / failed / known limitations"
for s in $servers; do
  for c in $clients; do
    key="$c-client -> $s-server"
    echo "  $key: ${pair_pass[$key]:-0} / ${pair_fail[$key]:-0} / ${pair_lim[$key]:-0}"
  done
done
if [ ${#limit_lines[@]} -gt 0 ]; then
  echo
  echo "known limitations (not counted; see interop/peers/LIMITATIONS.md): $limited"
  printf '  %s\n' "${limit_lines[@]}"
fi
echo
echo "matrix wall time: $((t1 - t0)) s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
