// The React binding (@triplit/react 1.0.51) over a real socket: a component
// using useQuery renders the server's data, and re-renders when another
// client (or an HTTP write) changes it. Rendered with react-dom into a
// happy-dom document, in Node, without a browser.
import { createClient, closeClients, waitFor, subscribeFulfilled } from '../lib/sync.mjs';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Window } from 'happy-dom';
import { Schema as S } from '@triplit/client';
import { startServer } from '../lib/server.mjs';
import { ok } from '../lib/http.mjs';
import { signToken } from '../lib/tokens.mjs';

// A DOM for react-dom, before it loads.
const window = new Window({ url: 'http://localhost/' });
globalThis.window = window;
globalThis.document = window.document;
if (!globalThis.navigator) globalThis.navigator = window.navigator;
const React = await import('react');
const { createRoot } = await import('react-dom/client');
const { useQuery, useConnectionStatus } = await import('@triplit/react');
const h = React.createElement;

const collections = S.Collections({
  todos: { schema: S.Schema({ id: S.Id(), text: S.String(), done: S.Boolean({ default: false }), list: S.String() }) },
});

let server;
before(async () => {
  server = await startServer({ schema: { collections } });
});
after(async () => {
  await closeClients();
  await server?.stop();
  await window.happyDOM.close();
});

function mount(element) {
  const container = document.createElement('div');
  document.body.appendChild(container);
  const root = createRoot(container);
  root.render(element);
  return {
    container,
    text: () => container.textContent,
    items: () => [...container.querySelectorAll('li')].map((li) => li.textContent),
    unmount: () => root.unmount(),
  };
}

describe('@triplit/react useQuery', () => {
  it('renders the synced results and re-renders on a remote change', async () => {
    await ok(server, '/bulk-insert', {
      todos: [
        { id: 't1', text: 'milk', list: 'home' },
        { id: 't2', text: 'bread', list: 'home' },
      ],
    });
    const viewer = createClient(server, { token: signToken({ sub: 'viewer' }), schema: collections });
    const writer = createClient(server, { token: signToken({ sub: 'writer' }), schema: collections });
    // The writer needs the entities in its cache to update them.
    const writerSub = await subscribeFulfilled(writer, writer.query('todos').Where('list', '=', 'home'));
    const query = viewer.query('todos').Where('list', '=', 'home').Order('text', 'ASC');
    let renders = 0;
    function Todos() {
      renders++;
      const { results, fetching, error } = useQuery(viewer, query);
      const status = useConnectionStatus(viewer);
      if (error) return h('p', null, `error: ${error.message}`);
      return h(
        'div',
        null,
        h('span', { id: 'status' }, `${status}${fetching ? ' fetching' : ''}`),
        h('ul', null, (results ?? []).map((t) => h('li', { key: t.id }, `${t.text}${t.done ? ' ✓' : ''}`)))
      );
    }
    const view = mount(h(Todos));
    await waitFor(() => JSON.stringify(view.items()) === JSON.stringify(['bread', 'milk']), { message: 'initial render' });
    await waitFor(() => view.container.querySelector('#status').textContent === 'OPEN', { message: 'connected, not fetching' });
    const rendersBefore = renders;

    // Another client writes: the component re-renders with it.
    await writer.insert('todos', { id: 't3', text: 'eggs', list: 'home' });
    await waitFor(() => JSON.stringify(view.items()) === JSON.stringify(['bread', 'eggs', 'milk']), { message: 'remote insert rendered' });
    assert.ok(renders > rendersBefore, 're-rendered');

    await writer.update('todos', 't1', (e) => void (e.done = true));
    await waitFor(() => view.items().includes('milk ✓'), { message: 'remote update rendered' });

    // An HTTP write counts as remote too; a delete removes the row.
    await ok(server, '/delete', { collectionName: 'todos', entityId: 't2' });
    await waitFor(() => JSON.stringify(view.items()) === JSON.stringify(['eggs', 'milk ✓']), { message: 'remote delete rendered' });

    // The viewer's own write renders at once, and reaches the writer's cache.
    await viewer.insert('todos', { id: 't4', text: 'apples', list: 'home' });
    await waitFor(() => view.items()[0] === 'apples', { message: 'local insert rendered' });
    await waitFor(() => writerSub.results().some((r) => r.id === 't4'), { message: 'the writer got it' });
    writerSub.unsubscribe();
    view.unmount();
  });
});
