#!/bin/sh
# Builds the grpc-go peers of the demo service (tests/interop/go) into OUT:
# OUT/go-demo-server and OUT/go-demo-client. Offline: grpc-go and
# goprotobuf from Debian (golang-google-grpc-dev, golang-goprotobuf-dev,
# protobuf-compiler, golang-go) in GOPATH mode; the generated demo.pb.go
# lives under OUT only.
#
#   build.sh OUT
set -eu
out=${1:?usage: build.sh OUT}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
gp=$out/gopath
rm -rf "$gp"
mkdir -p "$gp/src/sgrpcdemo/demopb"
protoc -I"$repo/examples/demo" \
  --go_out=plugins=grpc,paths=source_relative,Mdemo.proto=sgrpcdemo/demopb:"$gp/src/sgrpcdemo/demopb" \
  demo.proto
for role in server client; do
  ln -s "$here/$role" "$gp/src/sgrpcdemo/$role"
  (cd "$gp/src/sgrpcdemo" && GO111MODULE=off GOPATH="$gp:/usr/share/gocode" \
    GOCACHE="$out/gocache" GOFLAGS= timeout 600 go build -o "$out/go-demo-$role" "./$role")
done
echo "built $out/go-demo-server $out/go-demo-client"
