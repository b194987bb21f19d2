#!/bin/bash
# Builds gRPC-Go's own interop client and server (interop/client/client.go,
# interop/server/server.go and the google.golang.org/grpc/interop package of
# grpc-go 1.33.3, from Debian's source package golang-google-grpc, which
# interop/official/fetch_source.sh unpacks) offline with Debian's Go
# toolchain, for interop/run_matrix.sh.
#
# usage: build.sh SRC_TREE OUT_DIR
# writes OUT_DIR/bin/go-official-client and OUT_DIR/bin/go-official-server
# (wrappers running interop/official/go/{client,server}.sh with the built
# programs, OUT_DIR/go/interop-{client,server}).
#
# How it builds (GO111MODULE=off, GOPROXY=off, nothing fetched):
# - A private GOPATH, OUT_DIR/gopath, whose google.golang.org/grpc is a copy
#   of SRC_TREE, followed by /usr/share/gocode for the dependencies (Debian's
#   golang-*-dev packages below). GOCACHE is OUT_DIR/gocache.
# - The copy is needed because the tree's checked-in *.pb.go are generated
#   for the protobuf APIv2 runtime (google.golang.org/protobuf), which
#   Debian's grpc-go 1.33 is not built against: Debian's debian/rules
#   deletes every *.pb.go (except reflection/grpc_testingv3) and runs the
#   tree's regenerate.sh (patched by Debian for packaging) with protoc,
#   protoc-gen-go 1.3 and protoc-gen-go-grpc. This script does the same in
#   the copy, with the same Debian generators (protoc-gen-go-grpc is the
#   binary Debian built from this very source package).
# - The official server listens on all interfaces (net.Listen("tcp",
#   ":"+p)). In the copy's interop/server/server.go, and only there, that
#   one expression becomes net.Listen("tcp", "127.0.0.1:"+p): the listen
#   address is the only change; the build fails if the expression is not
#   found exactly once. SRC_TREE itself is never modified. Every other line
#   of the client, server and interop package is built as shipped.
# Packages (installed with apt-get when missing, if root and SGRPC_NO_APT
# is not 1): see pkgs below.
set -u
pkgs="golang-go golang-google-grpc-dev golang-github-golang-protobuf-1-3-dev
  golang-golang-x-net-dev golang-golang-x-oauth2-dev golang-golang-x-oauth2-google-dev
  golang-google-cloud-compute-metadata-dev golang-golang-x-sys-dev golang-golang-x-text-dev
  golang-google-genproto-dev golang-github-google-go-cmp-dev golang-glog-dev
  protobuf-compiler protoc-gen-go-1-3 protoc-gen-go-grpc"

die() { echo "go-official build: $*" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
[ $# = 2 ] || die "usage: build.sh SRC_TREE OUT_DIR"
src=$(cd "$1" 2>/dev/null && pwd) || die "no source tree $1"
for f in interop/client/client.go interop/server/server.go interop/test_utils.go \
         interop/grpc_testing/test.proto regenerate.sh debian/missing-sources version.go; do
  [ -e "$src/$f" ] || die "$src/$f missing: not an unpacked golang-google-grpc source tree"
done
grep -q 'const Version = "1.33.3"' "$src/version.go" ||
  echo "go-official build: warning: $src is not grpc-go 1.33.3 (what this glue was made for)" >&2
mkdir -p "$2" || die "cannot create $2"
out=$(cd "$2" && pwd)

. "$here/../lib.sh"
# shellcheck disable=SC2086 # one word per package
need_packages "go-official build" $pkgs || exit 1
for t in go protoc protoc-gen-go protoc-gen-go-grpc; do
  command -v "$t" >/dev/null || die "$t not found in PATH"
done

# The copy, with its protobuf code regenerated as debian/rules does.
gp=$out/gopath
pkg=$gp/src/google.golang.org/grpc
rm -rf "$pkg" "$out/tmp" && mkdir -p "$gp/src/google.golang.org" "$out/tmp" "$out/go" "$out/bin" ||
  die "cannot prepare $out"
cp -a "$src" "$pkg" || die "copying $src failed"
chmod -R u+w "$pkg"
find "$pkg" -not -path '*/reflection/grpc_testingv3/*' -type f -name '*.pb.go' -delete ||
  die "removing the checked-in *.pb.go failed"
(cd "$pkg" && TMPDIR=$out/tmp ./regenerate.sh > "$out/regenerate.log" 2>&1) ||
  die "regenerate.sh failed (see $out/regenerate.log): $(tail -3 "$out/regenerate.log" | tr '\n' ' ')"
[ -f "$pkg/interop/grpc_testing/test.pb.go" ] && [ -f "$pkg/interop/grpc_testing/test_grpc.pb.go" ] ||
  die "regenerate.sh made no interop/grpc_testing code"

# Keep the server on loopback: replace only the listen address.
srv=$pkg/interop/server/server.go
want='net.Listen("tcp", ":"+p)'
n=$(grep -cF "$want" "$srv")
[ "$n" = 1 ] || die "expected exactly one '$want' in interop/server/server.go, found $n"
sed -i 's|net.Listen("tcp", ":"+p)|net.Listen("tcp", "127.0.0.1:"+p)|' "$srv" || die "sed failed"
[ "$(diff "$src/interop/server/server.go" "$srv" | grep -c '^[<>]')" = 2 ] ||
  die "the listen-address substitution changed more than one line"

export GO111MODULE=off GOPATH="$gp:/usr/share/gocode" GOCACHE=$out/gocache GOFLAGS= GOPROXY=off
for role in client server; do
  go build -o "$out/go/interop-$role" "google.golang.org/grpc/interop/$role" > "$out/build-$role.log" 2>&1 ||
    die "go build of interop/$role failed: $(head -5 "$out/build-$role.log" | tr '\n' ' ')"
  write_wrapper "$out/bin/go-official-$role" SGRPC_GO_OFFICIAL_BIN "$out/go/interop-$role" \
    "$here/$role.sh" || die "cannot write $out/bin/go-official-$role"
done
rm -rf "$out/tmp"
echo "go-official build: done: $out/bin/go-official-client $out/bin/go-official-server"
