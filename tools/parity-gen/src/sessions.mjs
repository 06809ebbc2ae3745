// Token claims the permission cases run under. A case without `session`
// runs as the service token (rules skipped).

export const SESSIONS = {
  anon: { claims: { 'x-triplit-token-type': 'anon' } },
  // roles: user
  u1: { claims: { sub: 'u1', 'x-triplit-token-type': 'external' } },
  // roles: user, member(o2)
  u2org: { claims: { sub: 'u2', org: 'o2' } },
  // roles: user, admin
  admin: { claims: { sub: 'u3', role: 'admin' } },
  // roles: member(o1) only
  member: { claims: { org: 'o1' } },
  // roles: user, paid
  paid: { claims: { sub: 'u4', plan: 'pro' } },
  // roles: none
  none: { claims: { foo: 'bar' } },
  // roles: user, with a non-ASCII id
  emoji: { claims: { sub: 'u😀' } },
  // roles: user, for an id with no entity
  ghost: { claims: { sub: 'u-missing', org: 'o3' } },
  // the service token with claims: rules skipped, $session still bound
  serviceClaims: { service: true, claims: { 'x-triplit-token-type': 'secret', sub: 'u1', org: 'o1' } },
};
