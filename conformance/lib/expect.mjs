// Assertions shared by the tests.
import assert from 'node:assert/strict';

/**
 * Assert that a response from `call()` is a TriplitError JSON body:
 * `{name, message, baseMessage, status, contextMessage?}`.
 *   status:     the HTTP status
 *   name:       the error's `name` (the stable code clients read)
 *   bodyStatus: the `status` field in the body; defaults to the HTTP status.
 *               Pass null where the reference's body status is a quirk that is
 *               not part of the contract (then it only has to be a number).
 *   message:    a substring `message` must contain, only where the text is the contract
 */
export function assertTriplitError(res, { status, name, bodyStatus = status, message } = {}) {
  const where = `${res.status} ${res.text.slice(0, 500)}`;
  if (status !== undefined) assert.equal(res.status, status, `HTTP status; got ${where}`);
  assert.ok(res.json && typeof res.json === 'object' && !Array.isArray(res.json), `a JSON object body; got ${where}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/, 'content-type');
  const body = res.json;
  assert.equal(typeof body.name, 'string', `name; got ${where}`);
  if (name !== undefined) assert.equal(body.name, name, `error name; got ${where}`);
  assert.equal(typeof body.message, 'string', `message; got ${where}`);
  assert.equal(typeof body.status, 'number', `body status; got ${where}`);
  if (bodyStatus !== null && bodyStatus !== undefined) assert.equal(body.status, bodyStatus, `body status; got ${where}`);
  if (message !== undefined) assert.ok(body.message.includes(message), `message should contain ${JSON.stringify(message)}; got ${where}`);
  assert.equal(typeof body.baseMessage, 'string', `baseMessage; got ${where}`);
  if (body.contextMessage !== undefined) {
    assert.equal(typeof body.contextMessage, 'string');
    assert.equal(body.message, `${body.baseMessage} | Context: ${body.contextMessage}`, 'message composition');
  } else {
    assert.equal(body.message, body.baseMessage, 'message without context');
  }
  return body;
}

/** A nanoid as `S.Id()` generates it: 21 characters of A-Za-z0-9_- */
export const NANOID = /^[A-Za-z0-9_-]{21}$/;
/** Date.prototype.toISOString() output */
export const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Sort a fetch result by id, for order-insensitive comparisons. */
export function byId(rows) {
  return [...rows].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
