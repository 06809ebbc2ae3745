// With VITE_CLERK_PUBLISHABLE_KEY set, the app switches to Clerk: it loads
// its Clerk chunk (@clerk/clerk-react), which loads Clerk's browser SDK from
// the Frontend API named in the key. There is no Clerk here (and no
// internet): every request off 127.0.0.1 is recorded and aborted by the
// test, so this checks the wiring, not a sign-in.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, serveApp, waitFor, ARTIFACTS } from './lib/harness.mjs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const FRONTEND_API = 'ferry-example.clerk.accounts.dev';
// A publishable key is pk_test_ + base64("<frontend api>$").
const PUBLISHABLE_KEY = `pk_test_${Buffer.from(`${FRONTEND_API}$`).toString('base64').replace(/=+$/, '')}`;

let app;
let browser;
before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  app = await serveApp({
    env: {
      VITE_CLERK_PUBLISHABLE_KEY: PUBLISHABLE_KEY,
      VITE_TRIPLIT_SERVER_URL: 'http://127.0.0.1:9',
      VITE_LOCAL_ISSUER_URL: 'http://127.0.0.1:9',
    },
  });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await app?.stop();
});

describe('Clerk mode', () => {
  it('with a Clerk key the app loads its Clerk chunk and asks Clerk (not the local stand-in)', async () => {
    const context = await browser.newContext();
    const offHost = [];
    await context.route(
      (url) => url.hostname !== '127.0.0.1',
      (route) => {
        offHost.push(route.request().url());
        return route.abort();
      }
    );
    const page = await context.newPage();
    const requests = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(app.url);
    await waitFor(() => offHost.some((u) => new URL(u).hostname === FRONTEND_API), {
      message: `a request to ${FRONTEND_API}`,
    });
    assert.ok(
      requests.some((u) => /\/assets\/ClerkAuth-[\w-]+\.js$/.test(u)),
      `the Clerk chunk was loaded: ${requests.join(', ')}`
    );
    assert.ok(!requests.some((u) => u.includes('/token?')), 'the local stand-in is not asked for tokens');
    // The app renders, waiting for Clerk to say who is signed in.
    await page.getByRole('heading', { name: 'Todos' }).waitFor({ timeout: 10_000 });
    assert.equal(await page.getByTestId('sign-in-alice').count(), 0, 'no local user picker');
    await page.screenshot({ path: join(ARTIFACTS, '10-clerk-mode-no-network.png') });
    await context.close();
  });
});
