#!/bin/bash
# Builds the interop peers (interop/peers/*) into BUILD_DIR (default
# build-peers at the repository root): BUILD_DIR/bin/{python,go,cpp,node}-
# {server,client}, and wrappers for gRPC's official interop programs found
# offline (interop/official): BUILD_DIR/bin/ruby-official-{client,server}
# and BUILD_DIR/grpc-testdata (their bundled test CA and server1 cert/key),
# and, built from Debian's source packages of the installed gRPC (fetched
# by interop/official/fetch_source.sh), gRPC's own interop programs of
# grpc-go, grpcio and grpc++: BUILD_DIR/bin/{go,python,cpp}-official-
# {client,server} (SGRPC_NO_OFFICIAL=1 skips those three).
# Installs missing Debian packages first (dpkg-query check; SGRPC_NO_APT=1
# skips) and runs `npm install` for the grpc-js peer. Nothing generated
# lands in the tree except interop/peers/node/node_modules (ignored).
# usage: build_peers.sh [BUILD_DIR]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
out=$(mkdir -p "${1:-$repo/build-peers}" && cd "${1:-$repo/build-peers}" && pwd)
peers=$here/peers
mkdir -p "$out/bin"
step() { echo "build_peers: $*"; }

. "$repo/scripts/packages.sh"
. "$here/official/lib.sh"
# shellcheck disable=SC2086 # one word per package
need_packages build_peers $SGRPC_PKGS_INTEROP
command -v node >/dev/null && command -v npm >/dev/null ||
  { echo "build_peers: node and npm are needed for the grpc-js peer" >&2; exit 1; }

# Python (grpcio): stubs into the build dir; Debian's interpreter, not the
# first python3 on PATH.
step "python stubs"
rm -rf "$out/python"
PYTHONDONTWRITEBYTECODE=1 timeout 120 /usr/bin/python3 "$peers/python/stubs.py" "$out/python"
for role in server client; do
  cat > "$out/bin/python-$role" <<WRAP
#!/bin/sh
export PEER_PY_STUBS="$out/python" PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 "$peers/python/$role.py" "\$@"
WRAP
  chmod +x "$out/bin/python-$role"
done

# Go (grpc-go 1.33 from Debian, GOPATH mode, offline): generated code and
# links to the sources live in a GOPATH under the build dir.
step "go peers"
gp=$out/gopath
rm -rf "$gp"
mkdir -p "$gp/src/sgrpcpeer/testpb" "$gp/gen"
m=Mgrpc/testing/empty.proto=sgrpcpeer/testpb,Mgrpc/testing/messages.proto=sgrpcpeer/testpb,Mgrpc/testing/test.proto=sgrpcpeer/testpb
(cd /usr/share/grpc-proto && timeout 120 protoc -I. \
  --go_out=plugins=grpc,paths=source_relative,$m:"$gp/gen" \
  grpc/testing/test.proto grpc/testing/messages.proto grpc/testing/empty.proto)
mv "$gp"/gen/grpc/testing/*.pb.go "$gp/src/sgrpcpeer/testpb/"
for d in gzipflag server client; do ln -s "$peers/go/$d" "$gp/src/sgrpcpeer/$d"; done
for role in server client; do
  (cd "$gp/src/sgrpcpeer" && GO111MODULE=off GOPATH="$gp:/usr/share/gocode" \
    GOCACHE="$out/gocache" GOFLAGS= timeout 600 go build -o "$out/bin/go-$role" "./$role")
done

# C++ (grpc++ / C-core).
step "c++ peers"
timeout 900 make -s -C "$peers/cpp" -j"$(nproc)" OUT="$out/cpp"
ln -sf "$out/cpp/cpp-server" "$out/bin/cpp-server"
ln -sf "$out/cpp/cpp-client" "$out/bin/cpp-client"

# Node (@grpc/grpc-js from npm).
step "node peers (npm install)"
(cd "$peers/node" && timeout 600 npm install --no-audit --no-fund --loglevel=error >/dev/null)
for role in server client; do
  cat > "$out/bin/node-$role" <<WRAP
#!/bin/sh
exec node "$peers/node/$role.js" "\$@"
WRAP
  chmod +x "$out/bin/node-$role"
done
# gRPC's official Ruby interop client and server (ruby-grpc ships them with
# the gem, gRPC 1.51 on C-core): run as they are, see interop/official.
step "official ruby interop programs"
gemdir=$(timeout 60 ruby -e 'print Gem::Specification.find_by_name("grpc").gem_dir')
for f in src/ruby/pb/test/client.rb src/ruby/pb/test/server.rb src/ruby/spec/testdata/ca.pem \
         src/ruby/spec/testdata/server1.pem src/ruby/spec/testdata/server1.key; do
  [ -f "$gemdir/$f" ] || { echo "build_peers: $gemdir/$f missing (ruby-grpc)" >&2; exit 1; }
done
ln -sfn "$gemdir/src/ruby/spec/testdata" "$out/grpc-testdata"
for role in server client; do
  write_wrapper "$out/bin/ruby-official-$role" SGRPC_RUBY_GRPC_DIR "$gemdir" "$here/official/ruby-$role.sh"
done
# gRPC's official interop programs of grpc-go, grpcio and grpc++: Debian
# builds them from its source packages but ships none, so they are built
# here from the very source package (and version) the installed libraries
# came from; interop/official/<stack>/build.sh says how.
if [ "${SGRPC_NO_OFFICIAL:-0}" != 1 ]; then
  step "official interop programs from Debian source packages"
  srcdir=$out/official-src
  gotree=$("$here/official/fetch_source.sh" golang-google-grpc-dev "$srcdir" | tail -n 1)
  grpctree=$("$here/official/fetch_source.sh" libgrpc++-dev "$srcdir" | tail -n 1)
  [ -d "$gotree" ] && [ -d "$grpctree" ] ||
    { echo "build_peers: fetching the gRPC source packages failed" >&2; exit 1; }
  for spec in "go|$gotree" "python|$grpctree" "cpp|$grpctree"; do
    stack=${spec%%|*}
    step "official $stack"
    "$here/official/$stack/build.sh" "${spec#*|}" "$out/official-$stack"
    for role in client server; do
      ln -sfn "$out/official-$stack/bin/$stack-official-$role" "$out/bin/$stack-official-$role"
    done
  done
fi
step "done: $out/bin"
ls "$out/bin"
