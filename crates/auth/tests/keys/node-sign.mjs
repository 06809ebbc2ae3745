// Signs fixture tokens with Node's own crypto (not the code under test) and
// prints them as JSON, with the public keys exported as JWKs.
import crypto from 'node:crypto';
import fs from 'node:fs';

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const priv = (name) => crypto.createPrivateKey(fs.readFileSync(name));

function sign(alg, key, claims, extraHeader = {}) {
  const header = { alg, typ: 'JWT', ...extraHeader };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  let sig;
  if (alg.startsWith('HS')) {
    sig = crypto.createHmac(`sha${alg.slice(2)}`, key).update(input).digest();
  } else if (alg === 'EdDSA') {
    sig = crypto.sign(null, Buffer.from(input), key);
  } else {
    const hash = `sha${alg.slice(2)}`;
    const opts = { key };
    if (alg.startsWith('PS')) {
      opts.padding = crypto.constants.RSA_PKCS1_PSS_PADDING;
      opts.saltLength = crypto.constants.RSA_PSS_SALTLEN_DIGEST;
    }
    if (alg.startsWith('ES')) opts.dsaEncoding = 'ieee-p1363';
    sig = crypto.sign(hash, Buffer.from(input), opts);
  }
  return `${input}.${b64url(sig)}`;
}

const rsa = priv('rsa.key');
const ec256 = priv('ec256.key');
const ec384 = priv('ec384.key');
const ed = priv('ed25519.key');
// Far in the future (2100-01-01) so the fixtures never expire; tests pass
// their own clock anyway.
const claims = { sub: 'user_fixture', iat: 1700000000, exp: 4102444800 };
const jwk = (k) => crypto.createPublicKey(k).export({ format: 'jwk' });

const out = {
  claims,
  jwks: { rsa: jwk(rsa), ec256: jwk(ec256), ec384: jwk(ec384), ed25519: jwk(ed) },
  tokens: {
    RS256: sign('RS256', rsa, claims, { kid: 'fixture' }),
    RS384: sign('RS384', rsa, claims),
    RS512: sign('RS512', rsa, claims),
    PS256: sign('PS256', rsa, claims),
    PS384: sign('PS384', rsa, claims),
    PS512: sign('PS512', rsa, claims),
    ES256: sign('ES256', ec256, claims),
    ES384: sign('ES384', ec384, claims),
    EdDSA: sign('EdDSA', ed, claims),
    HS256_with_rsa_pem_as_secret: sign('HS256', fs.readFileSync('rsa.pub.pem'), claims),
  },
};
console.log(JSON.stringify(out, null, 2));
