// UPDATE_TOKEN over the socket (the 1.0.50 client refreshes with
// POST /update-token instead, but the server message exists upstream):
// same roles → the session continues; different roles → CLOSE
// ROLES_MISMATCH; an invalid token → CLOSE UNAUTHORIZED.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeRaws, openRaw } from '../lib/sync.mjs';
import { startServer } from '../lib/server.mjs';
import { signToken } from '../lib/tokens.mjs';

const schema = {
  roles: { user: { match: { sub: '$userId' } } },
  collections: {
    notes: {
      schema: { type: 'record', config: {}, properties: { id: { type: 'string', config: { nullable: false, default: { func: 'nanoid', args: null } } }, owner: { type: 'string', config: {} } } },
      permissions: { user: { read: { filter: [['owner', '=', '$role.userId']] } } },
    },
  },
};

const user = (sub, ttl = 600) => signToken({ sub, exp: Math.floor(Date.now() / 1000) + ttl });

describe('UPDATE_TOKEN over the socket', async () => {
  const server = await startServer({ schema });
  after(async () => {
    await closeRaws();
    await server.stop();
  });

  it('a token of the same user keeps the socket open', async () => {
    const raw = await openRaw(server, { token: user('u1', 5) });
    raw.send({ type: 'UPDATE_TOKEN', payload: { token: user('u1', 600) } });
    await raw.roundTrip();
    assert.equal(raw.closed, null);
    await raw.close();
  });

  it('a token with different roles closes the socket with ROLES_MISMATCH', async () => {
    const raw = await openRaw(server, { token: user('u1') });
    raw.send({ type: 'UPDATE_TOKEN', payload: { token: user('u2') } });
    const close = await raw.next('CLOSE');
    assert.equal(close.payload.type, 'ROLES_MISMATCH');
    assert.equal(close.payload.retry, false);
    const closed = await raw.closedEvent;
    assert.equal(closed.code, 1008);
    assert.equal(JSON.parse(closed.reason).type, 'ROLES_MISMATCH');
  });

  it('an invalid token closes the socket with UNAUTHORIZED', async () => {
    const raw = await openRaw(server, { token: user('u1') });
    raw.send({ type: 'UPDATE_TOKEN', payload: { token: 'not-a-jwt' } });
    const close = await raw.next('CLOSE');
    assert.equal(close.payload.type, 'UNAUTHORIZED');
    const closed = await raw.closedEvent;
    assert.equal(closed.code, 1008);
  });
});
