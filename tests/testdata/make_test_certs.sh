#!/usr/bin/env bash
# Makes a throwaway PKI for the TLS tests in $1 (created if missing):
#   ca.pem                       the CA that signs the server and client
#   server.pem, server.key       for localhost, 127.0.0.1 and ::1
#   client.pem, client.key       a client certificate from ca.pem
#   other_ca.pem                 an unrelated CA
#   other_client.pem/.key        a client certificate from other_ca.pem
# EC P-256 keys (fast to make), valid for 2 days: the tests make them anew
# each run, so nothing committed expires. Needs the openssl CLI.
set -euo pipefail
out=${1:?usage: make_test_certs.sh OUTDIR}
mkdir -p "$out"
cd "$out"

new_key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }

# A self-signed CA: $1 is the file stem, $2 the common name.
make_ca() {
  new_key "$1.key"
  openssl req -x509 -new -key "$1.key" -sha256 -days 2 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$1.pem"
}

# A leaf signed by CA $2: $1 is the file stem, $3 the common name, $4 the
# extensions.
make_leaf() {
  new_key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$3" -out "$1.csr"
  printf '%b' "$4" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" \
    -CAcreateserial -days 2 -sha256 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

make_ca ca "Joule test CA"
make_ca other_ca "Another test CA"
make_leaf server ca localhost \
  "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n"
make_leaf client ca "joule test client" "extendedKeyUsage=clientAuth\n"
make_leaf other_client other_ca "other test client" "extendedKeyUsage=clientAuth\n"
