#!/usr/bin/env bash
# Regenerates the test-only keys and the Node-signed tokens in this folder.
# The keys are throw-away fixtures: never use them for anything real.
# Needs openssl and node (for JWK export and signing with Node's crypto,
# an implementation independent of the one under test).
set -euo pipefail
cd "$(dirname "$0")"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key
openssl pkey -in rsa.key -pubout -out rsa.pub.pem
openssl rsa -in rsa.key -RSAPublicKey_out -out rsa.pkcs1.pub.pem
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa-other.key
openssl pkey -in rsa-other.key -pubout -out rsa-other.pub.pem
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out rsa1024.key
openssl pkey -in rsa1024.key -pubout -out rsa1024.pub.pem
rm rsa1024.key
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec256.key
openssl pkey -in ec256.key -pubout -out ec256.pub.pem
openssl ec -in ec256.key -pubout -conv_form compressed -out ec256.compressed.pub.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out ec384.key
openssl pkey -in ec384.key -pubout -out ec384.pub.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -out ec521.key
openssl pkey -in ec521.key -pubout -out ec521.pub.pem
rm ec521.key
openssl genpkey -algorithm ED25519 -out ed25519.key
openssl pkey -in ed25519.key -pubout -out ed25519.pub.pem
openssl genpkey -algorithm ED448 -out ed448.key
openssl pkey -in ed448.key -pubout -out ed448.pub.pem
rm ed448.key

node node-sign.mjs > node-tokens.json

# jose-cases.json (jose 4.15.9's verdicts on edge cases) is regenerated
# separately, see jose-oracle.mjs.
