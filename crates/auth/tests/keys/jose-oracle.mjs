// Records what jose 4.15.9 (the library Triplit 1.x's server verifies with)
// says about a set of edge-case tokens, for tests/jose_oracle.rs.
//
// The key choice restates triplit.md §3.1: a secret starting with the SPKI
// armour is imported with importSPKI, JSON with importJWK, anything else is
// used as UTF-8 bytes; then decodeJwt and jwtVerify.
//
// Usage (jose is not a project dependency):
//   npm install --prefix /tmp/jose jose@4.15.9
//   JOSE_DIR=/tmp/jose node jose-oracle.mjs > jose-cases.json
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

process.chdir(path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(path.join(process.env.JOSE_DIR ?? '.', 'package.json'));
const { decodeJwt, jwtVerify, importSPKI, importJWK } = require('jose');

const NOW = 1800000000000;
const S = 'jwt-key-for-development-only';
const b64 = (x) => Buffer.from(typeof x === 'string' ? x : x).toString('base64url');
const rsaPem = fs.readFileSync('rsa.pub.pem', 'utf8');
const ec256Pem = fs.readFileSync('ec256.pub.pem', 'utf8');
const ec384Pem = fs.readFileSync('ec384.pub.pem', 'utf8');
const edPem = fs.readFileSync('ed25519.pub.pem', 'utf8');
const pk = (f) => crypto.createPrivateKey(fs.readFileSync(f));
const rsa = pk('rsa.key'), ec256 = pk('ec256.key'), ec384 = pk('ec384.key'), ed = pk('ed25519.key');

function rawSign(alg, key, input) {
  if (alg.startsWith('HS')) return crypto.createHmac('sha' + alg.slice(2), key).update(input).digest();
  if (alg === 'EdDSA') return crypto.sign(null, Buffer.from(input), key);
  const o = { key };
  if (alg.startsWith('PS')) { o.padding = crypto.constants.RSA_PKCS1_PSS_PADDING; o.saltLength = 32; }
  if (alg.startsWith('ES')) o.dsaEncoding = 'ieee-p1363';
  return crypto.sign('sha' + alg.slice(2), Buffer.from(input), o);
}
function tok(headerText, payloadText, signAlg, key) {
  const input = `${b64(headerText)}.${b64(payloadText)}`;
  const sig = signAlg ? b64(rawSign(signAlg, key, input)) : 'c2ln';
  return `${input}.${sig}`;
}
const H = (alg, extra = '') => `{"alg":"${alg}","typ":"JWT"${extra}}`;
const now = NOW / 1000;

async function getKey(secret) {
  if (secret.startsWith('-----BEGIN PUBLIC KEY-----')) return importSPKI(secret, 'RS256');
  let parsed; try { parsed = JSON.parse(secret); } catch {}
  if (parsed) return importJWK(parsed, 'RS256');
  return new TextEncoder().encode(secret);
}
async function oracle(token, jwt, ext) {
  if (!token) return { name: 'TokenVerificationError', context: 'No token provided' };
  let payload;
  try { payload = decodeJwt(token); } catch { return { name: 'InvalidTokenPayloadError', context: 'Token could not be decoded as a valid JWT' }; }
  const external = !['test', 'anon', 'secret'].includes(payload['x-triplit-token-type']);
  const secret = external ? (ext ?? jwt) : jwt;
  if (!secret) return { name: 'TokenVerificationError', context: 'No secret provided for token verification' };
  const key = await getKey(secret);
  try { await jwtVerify(token, key, { currentDate: new Date(NOW) }); }
  catch (e) { return { name: 'InvalidTokenSignatureError', context: e.message }; }
  return { ok: payload };
}

const c = [];
const NONE = Symbol('none');
const add = (label, token, jwt = S, ext = undefined) => c.push({ label, token, jwt: jwt === NONE ? undefined : jwt, ext });
const anon = '{"x-triplit-token-type":"anon"}';
add('dev anon', tok(H('HS256'), anon, 'HS256', S));
add('wrong secret', tok(H('HS256'), anon, 'HS256', 'nope'));
add('hs384', tok(H('HS384'), anon, 'HS384', S));
add('hs512', tok(H('HS512'), anon, 'HS512', S));
add('exp past', tok(H('HS256'), `{"exp":${now - 1}}`, 'HS256', S));
add('exp now', tok(H('HS256'), `{"exp":${now}}`, 'HS256', S));
add('exp future', tok(H('HS256'), `{"exp":${now + 1}}`, 'HS256', S));
add('exp fractional', tok(H('HS256'), `{"exp":${now + 0.5}}`, 'HS256', S));
add('nbf future', tok(H('HS256'), `{"nbf":${now + 1}}`, 'HS256', S));
add('nbf now', tok(H('HS256'), `{"nbf":${now}}`, 'HS256', S));
add('nbf and exp bad', tok(H('HS256'), `{"nbf":${now + 10},"exp":${now - 10}}`, 'HS256', S));
add('iat string', tok(H('HS256'), '{"iat":"x"}', 'HS256', S));
add('exp null', tok(H('HS256'), '{"exp":null}', 'HS256', S));
add('exp string', tok(H('HS256'), '{"exp":"99999999999"}', 'HS256', S));
add('iat future', tok(H('HS256'), `{"iat":${now + 1000}}`, 'HS256', S));
add('alg none', tok('{"alg":"none"}', anon, null));
add('alg none empty sig', `${b64('{"alg":"none"}')}.${b64(anon)}.`);
add('alg HS1', tok('{"alg":"HS1"}', anon, null));
add('alg hs256', tok('{"alg":"hs256"}', anon, null));
add('alg RS256 vs hmac', tok(H('RS256'), anon, 'RS256', rsa));
add('alg ES512 vs hmac', tok('{"alg":"ES512"}', anon, null));
add('alg missing', tok('{"typ":"JWT"}', anon, null));
add('alg number', tok('{"alg":256}', anon, null));
add('header garbage', `!!!.${b64(anon)}.c2ln`);
add('header non-object', tok('[1,2]', anon, null));
add('header empty', `.${b64(anon)}.c2ln`);
add('header null', tok('null', anon, null));
add('crit empty', tok('{"alg":"HS256","crit":[]}', anon, 'HS256', S));
add('crit unknown', tok('{"alg":"HS256","crit":["exp"],"exp":1}', anon, 'HS256', S));
add('crit b64 missing', tok('{"alg":"HS256","crit":["b64"]}', anon, 'HS256', S));
add('crit b64 true', tok('{"alg":"HS256","crit":["b64"],"b64":true}', anon, 'HS256', S));
add('crit b64 string', tok('{"alg":"HS256","crit":["b64"],"b64":"x"}', anon, 'HS256', S));
add('crit null', tok('{"alg":"HS256","crit":null}', anon, 'HS256', S));
add('crit non-string', tok('{"alg":"HS256","crit":[1]}', anon, 'HS256', S));
add('payload array', tok(H('HS256'), '[1]', 'HS256', S));
add('payload text', tok(H('HS256'), 'hello', 'HS256', S));
add('payload bom', tok(H('HS256'), '\ufeff{"x-triplit-token-type":"anon"}', 'HS256', S));
add('payload empty', `${b64(H('HS256'))}..c2ln`);
add('four parts', 'a.b.c.d');
add('five parts', 'a.b.c.d.e');
add('garbage', 'garbage');
add('abc.def', 'abc.def');
add('empty token', '');
{ const t = tok(H('HS256'), anon, 'HS256', S); add('sig junk appended', t + '$$'); add('sig padded', t + '='); add('sig extra char', t + 'A'); }
{ const p = b64(anon) + '=='; const input = `${b64(H('HS256'))}.${p}`; add('payload padded, signed', `${input}.${b64(rawSign('HS256', S, input))}`); }
{ const input = `${b64(H('HS256'))}.${b64(anon).replace(/^(.)/, '*$1')}`; add('payload junk char, signed', `${input}.${b64(rawSign('HS256', S, input))}`); }
const ext = '{"sub":"u1"}';
add('ext fallback', tok(H('HS256'), ext, 'HS256', S));
add('ext foo type fallback', tok(H('HS256'), '{"x-triplit-token-type":"foo"}', 'HS256', S));
add('no secret', tok(H('HS256'), anon, 'HS256', S), NONE);
add('no secret, garbage', 'garbage', NONE);
add('empty jwt secret', tok(H('HS256'), anon, 'HS256', S), '');
add('empty ext secret', tok(H('HS256'), ext, 'HS256', S), S, '');
add('rs256 ext', tok(H('RS256'), ext, 'RS256', rsa), S, rsaPem);
add('rs256 ext one line', tok(H('RS256'), ext, 'RS256', rsa), S, rsaPem.replace(/\n/g, ''));
add('ps256 ext', tok(H('PS256'), ext, 'PS256', rsa), S, rsaPem);
add('hs256 vs rsa', tok(H('HS256'), ext, 'HS256', S), S, rsaPem);
add('hs256 confusion', tok(H('HS256'), ext, 'HS256', rsaPem), S, rsaPem);
add('HS1 vs rsa', tok('{"alg":"HS1"}', ext, null), S, rsaPem);
add('none vs rsa', tok('{"alg":"none"}', ext, null), S, rsaPem);
add('rs256 vs ec', tok(H('RS256'), ext, 'RS256', rsa), S, ec256Pem);
add('ps256 vs ec', tok(H('PS256'), ext, 'PS256', rsa), S, ec256Pem);
add('es256 vs rsa', tok(H('ES256'), ext, 'ES256', ec256), S, rsaPem);
add('es384 vs p256', tok(H('ES384'), ext, 'ES384', ec384), S, ec256Pem);
add('es256 vs p384', tok(H('ES256'), ext, 'ES256', ec256), S, ec384Pem);
add('es512 vs p256', tok('{"alg":"ES512"}', ext, null), S, ec256Pem);
add('es256k vs p256', tok('{"alg":"ES256K"}', ext, null), S, ec256Pem);
add('eddsa vs rsa', tok(H('EdDSA'), ext, 'EdDSA', ed), S, rsaPem);
add('es256 vs ed', tok(H('ES256'), ext, 'ES256', ec256), S, edPem);
add('eddsa ok', tok(H('EdDSA'), ext, 'EdDSA', ed), S, edPem);
add('es256 ok', tok(H('ES256'), ext, 'ES256', ec256), S, ec256Pem);
add('es384 ok', tok(H('ES384'), ext, 'ES384', ec384), S, ec384Pem);
add('rs256 wrong sig', tok(H('RS256'), ext, 'RS256', rsa).slice(0, -4) + 'AAAA', S, rsaPem);
add('triplit token with ext set uses jwt', tok(H('HS256'), anon, 'HS256', S), S, rsaPem);
add('rsa jwk', tok(H('RS256'), ext, 'RS256', rsa), S, JSON.stringify(crypto.createPublicKey(rsa).export({ format: 'jwk' })));
add('oct jwk', tok(H('HS256'), ext, 'HS256', 'octsecret'), S, JSON.stringify({ kty: 'oct', k: b64('octsecret') }));
add('oct jwk vs rs256', tok(H('RS256'), ext, 'RS256', rsa), S, JSON.stringify({ kty: 'oct', k: b64('octsecret') }));
add('falsy json secret 0', tok(H('HS256'), anon, 'HS256', '0'), '0');
add('falsy json secret null', tok(H('HS256'), anon, 'HS256', 'null'), 'null');

const out = [];
for (const x of c) {
  let r;
  try { r = await oracle(x.token, x.jwt, x.ext); } catch (e) { r = { throws: e.message }; }
  out.push({ ...x, expect: r });
}
console.log(JSON.stringify({ jose: '4.15.9', now_ms: NOW, cases: out }, null, 1));
