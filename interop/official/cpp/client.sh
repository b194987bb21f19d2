#!/bin/bash
# Runs gRPC C++'s official interop client (test/cpp/interop/client.cc of the
# grpc 1.51.1 source, built unchanged by build.sh against Debian's libgrpc++)
# under the flags run_matrix.sh passes to every client.
# SGRPC_CPP_OFFICIAL_DIR is build.sh's OUT_DIR (the bin/cpp-official-client
# wrapper sets it).
#
# Flag mapping:
# - The client has no --ca_file. With --use_test_ca=true it trusts only the
#   test CA compiled into it (test/core/end2end/data/test_root_cert.cc,
#   printed by libexec/print_test_ca). A --ca_file with exactly that content
#   is dropped; any other is refused (exit 3, "UNSUPPORTED: ...").
# - With --use_test_ca=true the client ignores --server_host_override and
#   always checks the name foo.test.google.fr; another override is refused.
# Everything else goes to the client as given. On failure the last stdout
# line is "FAIL: exit status N: " and the first error it logged.
#
# client_compressed_unary/_streaming first probe whether the server checks
# compression; when the probe is not refused the case returns false without
# running its checks, and client.cc ignores that return value (exit 0). The
# client logs it at DEBUG level, so it runs with GRPC_VERBOSITY=DEBUG (unless
# set by the caller; only its stderr log changes) and a "request probe
# failed" line turns the exit 0 into a failure here.
set -u
dir=${SGRPC_CPP_OFFICIAL_DIR:?SGRPC_CPP_OFFICIAL_DIR: build.sh OUT_DIR}
bin=$dir/libexec/interop_client
args=()
ca= override= test_ca=false tls=false
for a in "$@"; do
  case $a in
    --ca_file=*) ca=${a#--ca_file=} ;;
    --server_host_override=*) override=${a#*=}; args+=("$a") ;;
    --use_test_ca|--use_test_ca=true) test_ca=true; args+=("$a") ;;
    --use_tls|--use_tls=true) tls=true; args+=("$a") ;;
    *) args+=("$a") ;;
  esac
done
if [ -n "$ca" ]; then
  if [ "$tls" != true ] || [ "$test_ca" != true ]; then
    echo "UNSUPPORTED: the official C++ client has no --ca_file; a CA is only used with --use_tls=true --use_test_ca=true"
    exit 3
  fi
  if ! "$dir/libexec/print_test_ca" | cmp -s - "$ca"; then
    echo "UNSUPPORTED: the official C++ client trusts only its compiled-in test CA (test/core/end2end/data/test_root_cert.cc), not $ca"
    exit 3
  fi
fi
if [ "$tls" = true ] && [ "$test_ca" = true ] && [ -n "$override" ] &&
   [ "$override" != foo.test.google.fr ]; then
  echo "UNSUPPORTED: with --use_test_ca the official C++ client always checks the name foo.test.google.fr, not $override"
  exit 3
fi
err=$(mktemp) || exit 1
GRPC_VERBOSITY=${GRPC_VERBOSITY:-DEBUG} "$bin" "${args[@]}" 2> "$err"
rc=$?
if [ "$rc" = 0 ] && grep -q 'request probe failed' "$err"; then
  cat "$err" >&2
  rm -f "$err"
  echo "FAIL: the server did not reject the compression probe (expect_compressed on an uncompressed message); the official client skipped the case's checks"
  exit 1
fi
if [ "$rc" != 0 ]; then
  # gpr_log lines look like "E1206 20:20:37.53 25457 file.cc:144]   text".
  line=$(grep -m1 -E '^[EF][0-9]{4} |assertion failed|ERROR: ' "$err" |
         sed -E 's/^[EF][0-9]{4} [0-9:.]+ +[0-9]+ ([^]]*)\] +/\1: /' | cut -c1-300)
  echo "FAIL: exit status $rc: ${line:-$(tail -1 "$err" | cut -c1-300)}"
fi
cat "$err" >&2
rm -f "$err"
exit "$rc"
