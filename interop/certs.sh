#!/bin/bash
# Makes a throwaway test CA and a server certificate for "foo.test.google.fr"
# (the name interop clients pass in --server_host_override) in DIR:
#   ca.pem (trust this: --ca_file), server.pem + server.key (--tls_cert_file,
#   --tls_key_file). Keys live only in DIR; never commit them.
# usage: certs.sh DIR
set -eu
dir=${1:?usage: certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
umask 077
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -sha256 \
  -keyout ca.key -out ca.pem -subj "/CN=sgrpc interop test CA" \
  -addext "basicConstraints=critical,CA:true" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -sha256 -keyout server.key -out server.csr \
  -subj "/CN=foo.test.google.fr" 2>/dev/null
cat > server.ext <<'EXT'
basicConstraints=critical,CA:false
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:foo.test.google.fr,DNS:*.test.google.fr,DNS:localhost,IP:127.0.0.1
EXT
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
  -days 2 -sha256 -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext ca.srl
chmod 644 ca.pem server.pem
openssl verify -CAfile ca.pem server.pem >/dev/null
