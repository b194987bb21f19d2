#!/bin/bash
# Runs gRPC's official Ruby interop client (src/ruby/pb/test/client.rb of
# Debian's ruby-grpc, gRPC 1.51 on C-core) unmodified, under the flags
# run_matrix.sh passes to every client. SGRPC_RUBY_GRPC_DIR is the gem's
# directory (build_peers.sh writes it into the bin/ruby-official-client
# wrapper).
#
# The official client has no --ca_file: with --use_test_ca it trusts only
# its bundled spec/testdata/ca.pem. A --ca_file naming that same CA is
# dropped; any other CA is refused (exit 3, "UNSUPPORTED: ..."), never
# silently ignored. On failure the last stdout line is "FAIL: " and the
# first line of Ruby's error (the exception and its message).
set -u
gem=${SGRPC_RUBY_GRPC_DIR:?SGRPC_RUBY_GRPC_DIR: the grpc gem directory}
ca=$gem/src/ruby/spec/testdata/ca.pem
args=()
for a in "$@"; do
  case $a in
    --ca_file=*)
      if ! cmp -s "${a#--ca_file=}" "$ca"; then
        echo "UNSUPPORTED: the official Ruby client trusts only its bundled test CA ($ca), not ${a#--ca_file=}"
        exit 3
      fi ;;
    *) args+=("$a") ;;
  esac
done
err=$(mktemp) || exit 1
ruby "$gem/src/ruby/pb/test/client.rb" "${args[@]}" 2> "$err"
rc=$?
if [ "$rc" != 0 ]; then
  line=$(grep -m1 -v -e '^[[:space:]]*from ' -e '^[IWD], \[' "$err" | sed 's#^/[^:]*/##' | cut -c1-300)
  echo "FAIL: exit status $rc: ${line:-no error text}"
fi
cat "$err" >&2
rm -f "$err"
exit "$rc"
