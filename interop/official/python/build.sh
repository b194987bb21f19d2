#!/bin/bash
# Lays out gRPC Python's own interop client and server (src/python/
# grpcio_tests/tests/interop of gRPC's source tree, e.g. Debian's source
# package grpc 1.51.1) so that they run unchanged on Debian's python3-grpcio,
# and writes OUT_DIR/bin/python-official-{client,server} for run_matrix.sh.
#
# usage: build.sh SRC_TREE OUT_DIR
#   SRC_TREE: the unpacked gRPC source (interop/official/fetch_source.sh
#             python3-grpcio DIR prints it).
#   OUT_DIR:  a build directory; everything lands there, nothing in the tree.
#
# What it puts under OUT_DIR (all copied verbatim from SRC_TREE, except the
# generated protos and the wrappers):
#   tests/__init__.py _loader.py _runner.py _result.py   package glue as is
#   tests/interop/{__init__,client,server,methods,resources,service}.py
#   tests/interop/credentials/{ca.pem,server1.pem,server1.key}
#   tests/unit/{__init__,test_common}.py                 (server.py uses it)
#   src/proto/grpc/testing/{empty,messages,test}_pb2{,_grpc}.py, generated
#       from SRC_TREE/src/proto with python3 -m grpc_tools.protoc (Debian's
#       python3-grpc-tools), imported as src.proto.grpc.testing.*
#   loopback_shim.so     interop/official/loopback_shim.c (server.sh preloads it)
#   bin/python-official-client, bin/python-official-server
#
# Debian packages it needs (installed with apt-get when missing, as root,
# unless SGRPC_NO_APT=1):
#   python3-grpcio       the stack under test (grpc 1.51 on C-core)
#   python3-grpc-tools   grpc_tools.protoc for the *_pb2*.py files
#   python3-protobuf     runtime of the generated messages
#   python3-google-auth  client.py and methods.py import google.auth
#   python3-requests     methods.py imports google.auth.transport.requests
#   python3-coverage     tests/__init__.py (via _loader) imports coverage
#   gcc libc6-dev        to build the loopback shim
set -eu
pkgs="python3 python3-grpcio python3-grpc-tools python3-protobuf python3-google-auth
  python3-requests python3-coverage gcc libc6-dev"
src=${1:?usage: build.sh SRC_TREE OUT_DIR}
out=${2:?usage: build.sh SRC_TREE OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3

. "$here/../lib.sh"
# shellcheck disable=SC2086 # one word per package
need_packages "python-official build" $pkgs || exit 1

src=$(cd "$src" && pwd)
t=$src/src/python/grpcio_tests/tests
for f in __init__.py _loader.py _runner.py _result.py interop/__init__.py \
         interop/client.py interop/server.py interop/methods.py interop/resources.py \
         interop/service.py interop/credentials/ca.pem interop/credentials/server1.pem \
         interop/credentials/server1.key unit/__init__.py unit/test_common.py; do
  [ -f "$t/$f" ] || { echo "python-official build: $t/$f missing" >&2; exit 1; }
done
for p in empty messages test; do
  [ -f "$src/src/proto/grpc/testing/$p.proto" ] ||
    { echo "python-official build: $src/src/proto/grpc/testing/$p.proto missing" >&2; exit 1; }
done

mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -rf "$out/tests" "$out/src"
mkdir -p "$out/tests/interop/credentials" "$out/tests/unit" "$out/bin"
cp "$t"/{__init__.py,_loader.py,_runner.py,_result.py} "$out/tests/"
cp "$t"/interop/{__init__.py,client.py,server.py,methods.py,resources.py,service.py} \
  "$out/tests/interop/"
cp "$t"/interop/credentials/{ca.pem,server1.pem,server1.key} "$out/tests/interop/credentials/"
cp "$t"/unit/{__init__.py,test_common.py} "$out/tests/unit/"

# test.proto imports "src/proto/grpc/testing/empty.proto": with SRC_TREE as
# the include root the modules come out as src/proto/grpc/testing/*.py.
"$py" -m grpc_tools.protoc -I "$src" --python_out="$out" --grpc_python_out="$out" \
  "$src"/src/proto/grpc/testing/{empty,messages,test}.proto
for d in src src/proto src/proto/grpc src/proto/grpc/testing; do
  : > "$out/$d/__init__.py"
done

cc -shared -fPIC -O2 -o "$out/loopback_shim.so" "$here/../loopback_shim.c" -ldl

for role in client server; do
  write_wrapper "$out/bin/python-official-$role" SGRPC_PY_OFFICIAL_DIR "$out" "$here/$role.sh"
done

# Import check: both programs load with what is laid out here.
PYTHONPATH=$out "$py" -P -c 'import tests.interop.client, tests.interop.server' ||
  { echo "python-official build: the official modules do not import" >&2; exit 1; }
echo "python-official build: done: $out/bin"
