#!/bin/bash
# Runs gRPC's official Ruby interop server (src/ruby/pb/test/server.rb of
# Debian's ruby-grpc, gRPC 1.51 on C-core) under the flags run_matrix.sh
# passes to every server. SGRPC_RUBY_GRPC_DIR is the gem's directory.
#
# The server's code is unchanged; ruby_loopback.rb (loaded first) only
# makes it bind 127.0.0.1 instead of 0.0.0.0 and without SO_REUSEPORT.
# It has no --tls_cert_file/--tls_key_file: with --use_tls it always
# presents its bundled spec/testdata/server1.pem. Those flags are dropped
# when they name exactly the bundled files and refused otherwise.
set -u
here=$(cd "$(dirname "$0")" && pwd)
gem=${SGRPC_RUBY_GRPC_DIR:?SGRPC_RUBY_GRPC_DIR: the grpc gem directory}
td=$gem/src/ruby/spec/testdata
args=()
for a in "$@"; do
  case $a in
    --tls_cert_file=*|--tls_key_file=*)
      f=${a#*=}
      want=$td/server1.pem
      [ "${a%%=*}" = --tls_key_file ] && want=$td/server1.key
      if ! cmp -s "$f" "$want"; then
        echo "ruby-official-server: the official Ruby server only presents its bundled $want, not $f" >&2
        exit 2
      fi ;;
    *) args+=("$a") ;;
  esac
done
exec ruby -r "$here/ruby_loopback.rb" "$gem/src/ruby/pb/test/server.rb" "${args[@]}"
