#!/bin/bash
# Runs gRPC-Go's own interop client (interop/client/client.go of grpc-go
# 1.33.3, built by build.sh) unmodified under the flags run_matrix.sh passes
# to every client. SGRPC_GO_OFFICIAL_BIN is the built program (the
# bin/go-official-client wrapper sets it).
#
# Every run_matrix flag (--server_host, --server_port, --test_case,
# --use_tls, --use_test_ca, --ca_file, --server_host_override) is one of the
# Go client's own flags with the same meaning, so all arguments go through
# unchanged; Go's flag package takes the --name=value form.
# The client reports through grpclog on stderr and fails by logger.Fatal
# (exit status 1). On failure the last stdout line is "FAIL: exit status N:"
# and the FATAL message (or a panic's first line). When the client itself
# rejects the case name ("Unsupported test case: X": it has no such case)
# the last line is "UNSUPPORTED: ..." and the exit status 3.
set -u
bin=${SGRPC_GO_OFFICIAL_BIN:?SGRPC_GO_OFFICIAL_BIN: the built official Go interop client}
err=$(mktemp) || exit 1
"$bin" "$@" 2> "$err"
rc=$?
if [ "$rc" != 0 ]; then
  line=$(grep -m1 '^FATAL: ' "$err" | sed -E 's/^FATAL: [0-9/]+ [0-9:]+ //')
  [ -n "$line" ] || line=$(grep -m1 -e '^panic: ' -e '^flag provided' -e 'invalid value' "$err")
  [ -n "$line" ] || line=$(grep -v '^[[:space:]]*$' "$err" | tail -1)
  line=$(printf '%s' "$line" | cut -c1-300)
  cat "$err" >&2
  rm -f "$err"
  case $line in
    *"Unsupported test case: "*)
      c=$(printf '%s' "${line##*Unsupported test case:}" | tr -d '[:space:]')
      echo "UNSUPPORTED: gRPC-Go 1.33's official interop client has no case $c"
      exit 3 ;;
  esac
  echo "FAIL: exit status $rc: ${line:-no error text}"
  exit "$rc"
fi
cat "$err" >&2
rm -f "$err"
exit 0
