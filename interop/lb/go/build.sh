#!/bin/sh
# Builds the grpc-go programs of the load-balancing and proxy tests
# (interop/lb) into OUT:
#   OUT/go-lb-client       round_robin client (lbclient/)
#   OUT/go-lb-server       TestService server that reports its instance id (lbserver/)
#   OUT/go-interop-client  the grpc-go interop client of interop/peers/go/client
# Offline, in GOPATH mode: grpc-go 1.33 and goprotobuf from Debian
# (golang-google-grpc-dev, golang-goprotobuf-dev, protobuf-compiler,
# golang-go, grpc-proto); the generated grpc.testing code lives under OUT.
#
#   build.sh OUT
set -eu
out=${1:?usage: build.sh OUT}
here=$(cd "$(dirname "$0")" && pwd)
peers=$(cd "$here/../../peers/go" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
gp=$out/gopath
rm -rf "$gp"
mkdir -p "$gp/src/sgrpcpeer/testpb" "$gp/gen"
m=Mgrpc/testing/empty.proto=sgrpcpeer/testpb,Mgrpc/testing/messages.proto=sgrpcpeer/testpb,Mgrpc/testing/test.proto=sgrpcpeer/testpb
(cd /usr/share/grpc-proto && protoc -I. \
  --go_out=plugins=grpc,paths=source_relative,$m:"$gp/gen" \
  grpc/testing/test.proto grpc/testing/messages.proto grpc/testing/empty.proto)
mv "$gp"/gen/grpc/testing/*.pb.go "$gp/src/sgrpcpeer/testpb/"
ln -s "$here/lbclient" "$gp/src/sgrpcpeer/lbclient"
ln -s "$here/lbserver" "$gp/src/sgrpcpeer/lbserver"
ln -s "$peers/client" "$gp/src/sgrpcpeer/client"
ln -s "$peers/gzipflag" "$gp/src/sgrpcpeer/gzipflag"
for spec in lbclient:go-lb-client lbserver:go-lb-server client:go-interop-client; do
  (cd "$gp/src/sgrpcpeer" && GO111MODULE=off GOPATH="$gp:/usr/share/gocode" \
    GOCACHE="$out/gocache" GOFLAGS='' timeout 600 go build -o "$out/${spec#*:}" "./${spec%%:*}")
done
echo "built $out/go-lb-client $out/go-lb-server $out/go-interop-client"
