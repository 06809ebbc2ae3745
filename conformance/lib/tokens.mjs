// Token helpers. Every token the suite uses is signed here, with the test
// secret unless another one is passed, so both targets see identical tokens.
import jwt from 'jsonwebtoken';

/** The JWT_SECRET every server started by the harness is given. */
export const TEST_SECRET = 'ferry-conformance-test-secret';
export const PROJECT_ID = 'local-project-id';

/**
 * Sign arbitrary claims. Defaults: HS256, the test secret, no `iat`
 * (like `triplit dev`'s tokens, which use `noTimestamp`).
 * `options` are passed to jsonwebtoken's `sign` (e.g. `expiresIn`, `notBefore`,
 * `algorithm`); `options.secret` overrides the key.
 */
export function signToken(claims, options = {}) {
  const { secret = TEST_SECRET, ...rest } = options;
  return jwt.sign(claims, secret, { algorithm: 'HS256', noTimestamp: true, ...rest });
}

/** The service ("secret") token: admin routes, skips permissions. */
export function serviceTokenFor(secret = TEST_SECRET) {
  return signToken(
    { 'x-triplit-token-type': 'secret', 'x-triplit-project-id': PROJECT_ID },
    { secret }
  );
}

/** The anonymous token, as `triplit dev` prints it. */
export function anonTokenFor(secret = TEST_SECRET) {
  return signToken(
    { 'x-triplit-token-type': 'anon', 'x-triplit-project-id': PROJECT_ID },
    { secret }
  );
}

export const serviceToken = serviceTokenFor();
export const anonToken = anonTokenFor();
