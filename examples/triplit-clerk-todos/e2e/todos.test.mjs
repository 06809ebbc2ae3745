// The example end to end: two people in two browser contexts (headless
// Chromium), the built app, Ferry on its embedded SQLite storage, and the
// local Clerk stand-in minting 5-second tokens.
//
// The tests run in order and share the two signed-in users: each starts
// from what the previous ones left. Everything is asserted on the DOM (and,
// for "nothing arrives", on the WebSocket frames the page received); the
// screenshots in e2e/artifacts/ are for people.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  addTodo,
  launchBrowser,
  openUser,
  shoot,
  sleep,
  startStack,
  texts,
  todo,
  waitConnected,
  waitFor,
} from './lib/harness.mjs';

const TOKEN_TTL_S = 5;

let stack;
let browser;
let alice;
let bob;

before(async () => {
  stack = await startStack({ flow: 'clerk-key', tokenTtl: TOKEN_TTL_S });
  browser = await launchBrowser();
  [alice, bob] = await Promise.all([openUser(browser, stack, 'alice'), openUser(browser, stack, 'bob')]);
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

/** Run `body`; on failure, screenshot both users and attach the end of the servers' output (all of it: e2e/artifacts/servers.log). */
async function step(name, body) {
  try {
    await body();
  } catch (e) {
    for (const user of [alice, bob]) await shoot(user, `failed-${name}`).catch(() => {});
    const tail = (stack?.output() ?? '').split('\n').slice(-40).join('\n');
    e.message += `\n\nlast lines of the servers' output:\n${tail}`;
    throw e;
  }
}

const serverHas = async (text) => (await stack.serverTodos()).find((t) => t.text === text);

describe('Clerk + Triplit todos on Ferry', { timeout: 170_000 }, () => {
  it('a shared todo reaches the other user within a second; private todos never cross', (t) =>
    step('shared-and-private', async () => {
      await shoot(alice, '00-signed-in');
      const started = Date.now();
      await addTodo(alice, 'shared', 'Buy milk');
      await todo(bob, 'shared', 'Buy milk').waitFor({ timeout: 5000 });
      const latency = Date.now() - started;
      t.diagnostic(`Alice's todo on Bob's page after ${latency} ms`);
      assert.ok(latency < 1000, `Bob saw Alice's todo after ${latency} ms (must be under a second)`);

      await addTodo(alice, 'private', 'Alice diary: call mum');
      await addTodo(bob, 'private', 'Bob diary: dentist at 3');
      await todo(alice, 'private', 'Alice diary: call mum').waitFor();
      await todo(bob, 'private', 'Bob diary: dentist at 3').waitFor();
      // A shared todo written after Bob's private one: once Alice has it,
      // anything about Bob's private todo would have reached her too.
      await addTodo(bob, 'shared', 'Bring snacks');
      await todo(alice, 'shared', 'Bring snacks').waitFor({ timeout: 5000 });

      await waitFor(async () => (await serverHas('Alice diary: call mum')) && (await serverHas('Bob diary: dentist at 3')), {
        message: 'both private todos on the server',
      });
      assert.deepEqual(await texts(alice, 'shared'), ['Buy milk', 'Bring snacks']);
      assert.deepEqual(await texts(bob, 'shared'), ['Buy milk', 'Bring snacks']);
      assert.deepEqual(await texts(alice, 'private'), ['Alice diary: call mum']);
      assert.deepEqual(await texts(bob, 'private'), ['Bob diary: dentist at 3']);
      assert.ok(!(await alice.page.content()).includes('dentist'), "Bob's private todo is not on Alice's page");
      assert.ok(!(await bob.page.content()).includes('call mum'), "Alice's private todo is not on Bob's page");
      assert.ok(!alice.net.receivedText().includes('dentist'), "no frame to Alice mentions Bob's private todo");
      assert.ok(!bob.net.receivedText().includes('call mum'), "no frame to Bob mentions Alice's private todo");
      // Others' todos are read-only.
      assert.equal(await todo(bob, 'shared', 'Buy milk').locator('input[type=checkbox]').isDisabled(), true);
      assert.equal(await todo(bob, 'shared', 'Buy milk').getByRole('button').count(), 0);
      await shoot(alice, '01-shared-and-private');
      await shoot(bob, '01-shared-and-private');
    }));

  it('toggling and deleting sync', () =>
    step('toggle-delete', async () => {
      // (click, not check(): the box is controlled, it turns on when the write lands)
      await todo(alice, 'shared', 'Buy milk').locator('input[type=checkbox]').click();
      await bob.page
        .locator('[data-testid="shared-list"] li[data-text="Buy milk"][data-completed="true"]')
        .waitFor({ timeout: 5000 });
      await shoot(bob, '02-toggled-by-alice');

      await todo(bob, 'shared', 'Bring snacks').getByRole('button', { name: 'Delete Bring snacks' }).click();
      await todo(alice, 'shared', 'Bring snacks').waitFor({ state: 'detached', timeout: 5000 });

      await todo(alice, 'shared', 'Buy milk').locator('input[type=checkbox]').click();
      await bob.page
        .locator('[data-testid="shared-list"] li[data-text="Buy milk"][data-completed="false"]')
        .waitFor({ timeout: 5000 });
      await waitFor(async () => !(await serverHas('Bring snacks')), { message: 'the delete reached the server' });
      await shoot(alice, '02-after-toggle-and-delete');
    }));

  it('todos added offline sync when the browser is back online, also after the token expired meanwhile', () =>
    step('offline', async () => {
      const wentOffline = Date.now();
      await alice.context.setOffline(true);
      await alice.page.locator('[data-testid="connection"][data-status="offline"]').waitFor({ timeout: 5000 });
      // The app disconnects at once (the browser's offline mode alone would
      // leave an open WebSocket running).
      await waitFor(() => alice.net.openSockets().length === 0, { timeout: 5000, message: "Alice's socket closed" });

      await addTodo(alice, 'shared', 'Offline: water plants');
      await addTodo(alice, 'shared', 'Offline: fix bike');
      await addTodo(alice, 'private', 'Offline: my secret');
      for (const [list, text] of [
        ['shared', 'Offline: water plants'],
        ['shared', 'Offline: fix bike'],
        ['private', 'Offline: my secret'],
      ]) {
        await alice.page
          .locator(`[data-testid="${list}-list"] li[data-text="${text}"][data-pending="true"]`)
          .waitFor({ timeout: 5000 });
      }
      await shoot(alice, '03-offline-not-synced');

      // Stay offline for longer than a token lives: the app must come back
      // with a fresh token. (An absence with no sentinel: wait it out.)
      await sleep(Math.max(0, (TOKEN_TTL_S + 1) * 1000 - (Date.now() - wentOffline)));
      assert.equal(await serverHas('Offline: water plants'), undefined, 'nothing reached the server while offline');
      assert.equal(await todo(bob, 'shared', 'Offline: water plants').count(), 0);

      await alice.context.setOffline(false);
      await todo(bob, 'shared', 'Offline: water plants').waitFor({ timeout: 10_000 });
      await todo(bob, 'shared', 'Offline: fix bike').waitFor({ timeout: 10_000 });
      await waitConnected(alice);
      await waitFor(async () => (await alice.page.locator('[data-pending="true"]').count()) === 0, {
        message: "Alice's todos confirmed by the server",
      });
      assert.ok(await serverHas('Offline: my secret'), 'the private todo reached the server');
      assert.equal(await todo(bob, 'private', 'Offline: my secret').count(), 0);
      assert.ok(!bob.net.receivedText().includes('my secret'), "Alice's private todo never reached Bob");
      assert.equal(await alice.page.getByTestId('session-error').count(), 0);
      await shoot(alice, '03-back-online');
      await shoot(bob, '03-back-online');
    }));

  it(`one session outlives several ${TOKEN_TTL_S}-second tokens`, () =>
    step('token-lifetimes', async () => {
      const refreshes = async (user) => Number(await user.page.getByTestId('token').getAttribute('data-refreshes'));
      const before = {
        alice: { sockets: alice.net.sockets.length, refreshes: await refreshes(alice), updates: alice.net.requestsTo('/update-token').length },
        bob: { sockets: bob.net.sockets.length, refreshes: await refreshes(bob), updates: bob.net.requestsTo('/update-token').length },
      };
      const consoleBefore = { alice: alice.net.console.length, bob: bob.net.console.length };
      const started = Date.now();
      // Five rounds, 4 s apart: about 20 s, four token lifetimes.
      for (let round = 1; round <= 5; round++) {
        const [writer, reader] = round % 2 ? [alice, bob] : [bob, alice];
        const text = `Round ${round} by ${writer.name}`;
        await addTodo(writer, 'shared', text);
        await todo(reader, 'shared', text).waitFor({ timeout: 3000 });
        await sleep(Math.max(0, started + round * 4000 - Date.now()));
      }
      for (const user of [alice, bob]) {
        const was = before[user.name];
        assert.equal(user.net.sockets.length, was.sockets, `${user.name}: no new WebSocket was needed`);
        assert.equal(user.net.openSockets().length, 1, `${user.name}: the socket is still open`);
        assert.ok((await refreshes(user)) - was.refreshes >= 3, `${user.name}: at least 3 token refreshes`);
        assert.ok(user.net.requestsTo('/update-token').length - was.updates >= 3, `${user.name}: the new tokens went to Ferry`);
        const messages = user.net.console.slice(consoleBefore[user.name]).join('\n');
        assert.doesNotMatch(messages, /TOKEN_EXPIRED|UNAUTHORIZED|expired/i, `${user.name}: no session error`);
        assert.equal(await user.page.getByTestId('session-error').count(), 0);
      }
      await shoot(alice, '04-after-token-lifetimes');
    }));

  it('signing out ends the session: the signed-out page receives nothing more', () =>
    step('sign-out', async () => {
      await bob.page.getByTestId('sign-out').click();
      await bob.page.getByTestId('sign-in').waitFor({ timeout: 5000 });
      await waitFor(() => bob.net.openSockets().length === 0, { timeout: 5000, message: "Bob's socket closed" });
      const sockets = bob.net.sockets.length;
      const frames = bob.net.framesReceived();
      await shoot(bob, '05-signed-out');

      await addTodo(alice, 'shared', 'Written while Bob is away');
      await alice.page
        .locator('[data-testid="shared-list"] li[data-text="Written while Bob is away"][data-pending="false"]')
        .waitFor({ timeout: 5000 });
      assert.ok(await serverHas('Written while Bob is away'));
      // Connected clients get a change within milliseconds; give it a second.
      await sleep(1000);
      assert.equal(bob.net.sockets.length, sockets, 'the signed-out page opened no socket');
      assert.equal(bob.net.framesReceived(), frames, 'the signed-out page received no frame');
      assert.ok(!(await bob.page.content()).includes('Written while Bob is away'));

      // Signing in again brings everything back.
      await bob.page.getByTestId('sign-in-bob').click();
      await waitConnected(bob);
      await todo(bob, 'shared', 'Written while Bob is away').waitFor({ timeout: 5000 });
      await todo(bob, 'private', 'Bob diary: dentist at 3').waitFor({ timeout: 5000 });
      await shoot(bob, '05-signed-in-again');
    }));

  it('a reload keeps the data, even with the server down; Ferry restarted with the PEM flow serves the same clients', () =>
    step('reload', async () => {
      const expected = await texts(alice, 'shared');
      assert.ok(expected.length >= 5);
      await stack.stopFerry();
      await alice.page.reload();
      // Straight from this browser's IndexedDB: the server is down.
      await todo(alice, 'private', 'Alice diary: call mum').waitFor({ timeout: 10_000 });
      await waitFor(async () => JSON.stringify(await texts(alice, 'shared')) === JSON.stringify(expected), {
        message: 'the shared list after the reload',
      });
      assert.equal(await alice.page.getByTestId('user-name').textContent(), 'Alice', 'still signed in');
      assert.notEqual(await alice.page.getByTestId('connection').getAttribute('data-status'), 'connected');
      await shoot(alice, '06-reloaded-server-down');

      // The same Ferry data, now trusting the issuer's PEM key
      // (TRIPLIT_EXTERNAL_JWT_SECRET) instead of the publishable key.
      await stack.startFerry('pem');
      await waitConnected(alice, 20_000);
      await waitConnected(bob, 20_000);
      await addTodo(alice, 'shared', 'After the restart');
      await todo(bob, 'shared', 'After the restart').waitFor({ timeout: 5000 });
      await addTodo(bob, 'shared', 'Bob, after the restart');
      await todo(alice, 'shared', 'Bob, after the restart').waitFor({ timeout: 5000 });

      await bob.page.reload();
      await waitConnected(bob);
      await todo(bob, 'shared', 'After the restart').waitFor();
      await todo(bob, 'private', 'Bob diary: dentist at 3').waitFor();
      await shoot(alice, '06-after-restart');
      await shoot(bob, '06-after-restart');
    }));

  it('without a Clerk key nothing is loaded from Clerk, and the pages raised no errors', () =>
    step('no-clerk', async () => {
      for (const user of [alice, bob]) {
        const foreign = user.net.requests.filter((u) => !/^(data|blob):/.test(u) && new URL(u).hostname !== '127.0.0.1');
        assert.deepEqual(foreign, [], `${user.name}: every request stayed on 127.0.0.1`);
        assert.deepEqual(
          user.net.requests.filter((u) => /clerk/i.test(u)),
          [],
          `${user.name}: the Clerk chunk was never fetched`
        );
        assert.deepEqual(user.net.pageErrors, [], `${user.name}: no uncaught errors`);
      }
    }));
});
