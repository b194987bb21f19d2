#!/bin/sh
# Makes throwaway certificates for tests/test_tls.c in the directory given
# as $1 (which must exist). Nothing made here is ever committed: test_tls
# runs this into a fresh temporary directory and deletes it afterwards.
#
#   ca.pem/ca.key            the test CA (trusted by both sides)
#   server.pem/server.key    CN=localhost; SAN DNS:localhost,
#                            DNS:foo.test.google.fr, DNS:*.test.youtube.com,
#                            IP:127.0.0.1, IP:::1 (signed by ca)
#   client.pem/client.key    CN=sgrpc-test-client; SAN URI + email (ca)
#   intruder.pem/.key        CN=sgrpc-test-intruder; SAN URI
#                            spiffe://sgrpc.test/intruder (ca): a valid
#                            client that authorization must refuse
#   other_ca.pem/.key        a second CA nobody trusts
#   other_server.pem/.key    a server cert for localhost signed by other_ca
#   other_client.pem/.key    a client cert signed by other_ca
#   expired.pem/.key         a localhost server cert, valid 2001-2002 (ca)
set -eu
d=${1:?usage: make_certs.sh DIR}
cd "$d"
O=${OPENSSL:-openssl}

key() { "$O" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

mkca() { # name cn
  key "$1.key"
  "$O" req -x509 -new -key "$1.key" -sha256 -days 3650 -subj "/O=sgrpc test/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$1.pem"
}

# leaf NAME CA SUBJECT EXTFILE-CONTENT
leaf() {
  key "$1.key"
  "$O" req -new -key "$1.key" -subj "$3" -out "$1.csr"
  printf '%s\n' "$4" > "$1.ext"
  "$O" x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial \
    -sha256 -days 825 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

SERVER_EXT='basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,DNS:foo.test.google.fr,DNS:*.test.youtube.com,IP:127.0.0.1,IP:::1'
CLIENT_EXT='basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
subjectAltName=URI:spiffe://sgrpc.test/client,email:client@sgrpc.test'

mkca ca "sgrpc test CA"
mkca other_ca "sgrpc untrusted CA"
leaf server ca "/O=sgrpc test/CN=localhost" "$SERVER_EXT"
leaf client ca "/O=sgrpc test/CN=sgrpc-test-client" "$CLIENT_EXT"
leaf intruder ca "/O=sgrpc test/CN=sgrpc-test-intruder" 'basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
subjectAltName=URI:spiffe://sgrpc.test/intruder'
leaf other_server other_ca "/O=sgrpc test/CN=localhost" "$SERVER_EXT"
leaf other_client other_ca "/O=sgrpc test/CN=sgrpc-other-client" "$CLIENT_EXT"

# An expired certificate: x509 -req cannot back-date, so sign it with
# "openssl ca", which takes explicit start and end dates.
key expired.key
"$O" req -new -key expired.key -subj "/O=sgrpc test/CN=localhost" -out expired.csr
mkdir -p cadb
: > cadb/index.txt
echo 1000 > cadb/serial
printf '%s\n' "$SERVER_EXT" > expired.ext
cat > cadb/ca.cnf <<CNF
[ ca ]
default_ca = test
[ test ]
dir = cadb
database = cadb/index.txt
serial = cadb/serial
new_certs_dir = cadb
default_md = sha256
policy = any
unique_subject = no
[ any ]
organizationName = optional
commonName = supplied
CNF
"$O" ca -batch -config cadb/ca.cnf -cert ca.pem -keyfile ca.key -notext \
  -startdate 20010101000000Z -enddate 20020101000000Z -extfile expired.ext \
  -in expired.csr -out expired.pem 2>/dev/null
rm -rf cadb expired.csr expired.ext ca.srl other_ca.srl
echo ok
