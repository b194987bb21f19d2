#!/bin/bash
# Builds gRPC C++'s own interop client and server (test/cpp/interop of the
# grpc 1.51.1 source package, e.g. as fetched by
# interop/official/fetch_source.sh libgrpc++-dev DIR) unchanged against the
# installed Debian libgrpc++/libgrpc/libgpr/absl/protobuf, and writes
#   OUT_DIR/bin/cpp-official-client, OUT_DIR/bin/cpp-official-server
# (wrappers calling interop/official/cpp/{client,server}.sh), plus
# OUT_DIR/libexec (the programs), OUT_DIR/lib/loopback_shim.so, OUT_DIR/gen
# (protos generated with protoc + grpc_cpp_plugin) and OUT_DIR/obj.
# Debian packages it needs (installed with apt-get when missing, as root,
# unless SGRPC_NO_APT=1):
pkgs="g++ make pkg-config protobuf-compiler protobuf-compiler-grpc
  libgrpc++-dev libgrpc-dev libprotobuf-dev libabsl-dev iproute2"
# usage: build.sh SRC_TREE OUT_DIR    (env JOBS, default 2)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "${1:?usage: build.sh SRC_TREE OUT_DIR}" && pwd)
mkdir -p "${2:?usage: build.sh SRC_TREE OUT_DIR}"
out=$(cd "$2" && pwd)

. "$here/../lib.sh"
# shellcheck disable=SC2086 # one word per package
need_packages "cpp-official build" $pkgs || exit 1

for f in test/cpp/interop/client.cc test/cpp/interop/interop_server.cc \
         src/proto/grpc/testing/test.proto; do
  [ -f "$src/$f" ] || { echo "cpp-official build: $src/$f missing (not a grpc source tree?)" >&2; exit 1; }
done
# The sources must match the installed library (they use C-core internals).
have=$(pkg-config --modversion grpc++)
grep -q "GRPC_CPP_VERSION_STRING \"$have\"" "$src/include/grpcpp/version_info.h" ||
  { echo "cpp-official build: $src is not grpc $have (the installed libgrpc++)" >&2; exit 1; }

t0=$(date +%s)
make -f "$here/Makefile" SRC="$src" OUT="$out" -j"${JOBS:-2}"
mkdir -p "$out/lib" "$out/bin"
cc -shared -fPIC -O2 -o "$out/lib/loopback_shim.so" "$here/../loopback_shim.c" -ldl
for role in client server; do
  write_wrapper "$out/bin/cpp-official-$role" SGRPC_CPP_OFFICIAL_DIR "$out" "$here/$role.sh"
done
echo "cpp-official build: done in $(( $(date +%s) - t0 )) s: $out/bin"
