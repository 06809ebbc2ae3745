import { useEffect, useMemo, useState, type FormEvent, type ReactNode } from 'react';
import { useConnectionStatus, useQuery } from '@triplit/react';
import { clientFor, type Client } from './triplit';
import { useTriplitSession, type GetToken, type SessionState } from './auth/useTriplitSession';

/** The signed-in state, the same shape for Clerk and for the local stand-in. */
export type Auth = {
  mode: 'clerk' | 'local';
  /** undefined while the provider is still loading; null when signed out. */
  user: { id: string; name: string } | null | undefined;
  getToken: GetToken;
  signOut: () => Promise<void>;
  /** A display name for another user's id, when the provider knows one. */
  nameOf: (userId: string) => string | undefined;
  /** Extra account UI (Clerk's user button). */
  accountMenu?: ReactNode;
};

export function TodoApp({ auth, signIn }: { auth: Auth; signIn: ReactNode }) {
  const userId = auth.user?.id ?? null;
  const client = useMemo(() => (userId ? clientFor(userId) : null), [userId]);
  const session = useTriplitSession(client, auth.getToken);

  let body: ReactNode;
  if (auth.user === undefined) body = <p className="muted">Loading…</p>;
  else if (auth.user === null) body = signIn;
  else if (!client || session.status !== 'active') body = <p className="muted">Starting your session…</p>;
  // Mounted once the session has started, so every query runs as this user.
  else body = <Todos key={auth.user.id} client={client} userId={auth.user.id} nameOf={auth.nameOf} />;

  return (
    <div className="app">
      <header>
        <div>
          <h1>Todos</h1>
          <p className="muted">Triplit + Clerk, served by Ferry</p>
        </div>
        {auth.user && (
          <div className="account">
            <span>
              Signed in as <strong data-testid="user-name">{auth.user.name}</strong>
            </span>
            {auth.accountMenu}
            <button type="button" onClick={() => void auth.signOut()} data-testid="sign-out">
              Sign out
            </button>
          </div>
        )}
      </header>
      {session.error && (
        <p role="alert" className="error" data-testid="session-error">
          {session.error}
        </p>
      )}
      <main>{body}</main>
      {client && <StatusBar client={client} session={session} mode={auth.mode} />}
    </div>
  );
}

function Todos({ client, userId, nameOf }: { client: Client; userId: string; nameOf: Auth['nameOf'] }) {
  const shared = useQuery(client, client.query('todos').Where('shared', '=', true).Order('createdAt', 'ASC'));
  const mine = useQuery(
    client,
    client.query('todos').Where('shared', '=', false).Where('authorId', '=', userId).Order('createdAt', 'ASC')
  );
  const pendingIds = usePendingIds(client);

  const [writeError, setWriteError] = useState<string>();
  useEffect(
    () =>
      client.onFailureToSyncWrites((error) => {
        setWriteError(error instanceof Error ? error.message : String(error));
      }),
    [client]
  );

  const add = (shared: boolean) => async (text: string) => {
    await client.insert('todos', { text, authorId: userId, shared });
  };

  return (
    <>
      {writeError && (
        <div role="alert" className="error" data-testid="write-error">
          The server refused a change: {writeError}{' '}
          <button
            type="button"
            onClick={async () => {
              await client.clearPendingChangesAll();
              setWriteError(undefined);
            }}
          >
            Discard unsynced changes
          </button>
        </div>
      )}
      <section data-testid="shared-list">
        <h2>Shared list</h2>
        <p className="muted">Everyone who signs in sees these; only the author can change them.</p>
        <AddTodo onAdd={add(true)} placeholder="Add to the shared list" testId="new-shared" />
        <TodoList
          todos={shared.results}
          fetching={shared.fetching}
          client={client}
          userId={userId}
          nameOf={nameOf}
          pendingIds={pendingIds}
        />
      </section>
      <section data-testid="private-list">
        <h2>Only me</h2>
        <p className="muted">Private: nobody else can read these.</p>
        <AddTodo onAdd={add(false)} placeholder="Add a private todo" testId="new-private" />
        <TodoList
          todos={mine.results}
          fetching={mine.fetching}
          client={client}
          userId={userId}
          nameOf={nameOf}
          pendingIds={pendingIds}
        />
      </section>
    </>
  );
}

/**
 * The ids of todos changed on this device that the server has not
 * confirmed yet (the client's outbox). A `syncStatus: 'pending'`
 * subscription follows local writes, but @triplit/client 1.0.50 does not
 * re-run it when the server acknowledges them, so confirmed ids are
 * dropped through onEntitySyncSuccess.
 */
function usePendingIds(client: Client): Set<string> {
  const [pending, setPending] = useState<Set<string>>(() => new Set());
  useEffect(
    () =>
      client.subscribe(
        client.query('todos'),
        (rows) => setPending(new Set(rows.map((t) => t.id))),
        undefined,
        { syncStatus: 'pending', localOnly: true }
      ),
    [client]
  );
  useEffect(() => {
    const offs = [...pending].map((id) =>
      client.onEntitySyncSuccess('todos', id, () =>
        setPending((current) => {
          const next = new Set(current);
          next.delete(id);
          return next;
        })
      )
    );
    return () => offs.forEach((off) => off());
  }, [client, pending]);
  return pending;
}

type TodoRow = { id: string; text: string; completed: boolean; authorId: string; shared: boolean; createdAt: Date };

function TodoList(props: {
  todos: TodoRow[] | undefined;
  fetching: boolean;
  client: Client;
  userId: string;
  nameOf: Auth['nameOf'];
  pendingIds: Set<string>;
}) {
  const { todos, fetching, client, userId, nameOf, pendingIds } = props;
  if (!todos) return <p className="muted">{fetching ? 'Loading…' : ''}</p>;
  if (todos.length === 0) return <p className="muted empty">Nothing here yet.</p>;
  return (
    <ul className="todos">
      {todos.map((todo) => {
        const isMine = todo.authorId === userId;
        const isPending = pendingIds.has(todo.id);
        return (
          <li
            key={todo.id}
            data-testid="todo"
            data-text={todo.text}
            data-completed={String(todo.completed)}
            data-pending={String(isPending)}
            className={todo.completed ? 'done' : undefined}
          >
            <label>
              <input
                type="checkbox"
                checked={todo.completed}
                disabled={!isMine}
                title={isMine ? undefined : 'Only the author can change this todo'}
                onChange={() => void client.update('todos', todo.id, { completed: !todo.completed })}
              />
              <span className="text">{todo.text}</span>
            </label>
            <span className="author">{isMine ? 'you' : (nameOf(todo.authorId) ?? todo.authorId)}</span>
            {isPending && (
              <span className="pending" title="Saved on this device, not yet on the server" data-testid="pending">
                not synced
              </span>
            )}
            {isMine && (
              <button
                type="button"
                className="delete"
                aria-label={`Delete ${todo.text}`}
                onClick={() => void client.delete('todos', todo.id)}
              >
                ×
              </button>
            )}
          </li>
        );
      })}
    </ul>
  );
}

function AddTodo({ onAdd, placeholder, testId }: { onAdd: (text: string) => Promise<void>; placeholder: string; testId: string }) {
  const [text, setText] = useState('');
  const [error, setError] = useState<string>();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const value = text.trim();
    if (!value) return;
    setText('');
    try {
      await onAdd(value);
      setError(undefined);
    } catch (err) {
      setText(value);
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <form className="add" onSubmit={submit}>
      <input value={text} onChange={(e) => setText(e.target.value)} placeholder={placeholder} data-testid={testId} />
      <button type="submit">Add</button>
      {error && <span className="error">{error}</span>}
    </form>
  );
}

function useOnline() {
  const [online, setOnline] = useState(() => navigator.onLine);
  useEffect(() => {
    const on = () => setOnline(true);
    const off = () => setOnline(false);
    window.addEventListener('online', on);
    window.addEventListener('offline', off);
    return () => {
      window.removeEventListener('online', on);
      window.removeEventListener('offline', off);
    };
  }, []);
  return online;
}

function useNow(intervalMs: number) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}

const STATUS_LABELS: Record<string, string> = {
  connected: 'Live',
  offline: 'Offline — changes are kept on this device',
  connecting: 'Connecting…',
  closed: 'Not connected',
};

function StatusBar({ client, session, mode }: { client: Client; session: SessionState; mode: Auth['mode'] }) {
  const connection = useConnectionStatus(client);
  const online = useOnline();
  const now = useNow(1000);
  const status = !online ? 'offline' : connection === 'OPEN' ? 'connected' : connection.toLowerCase();
  const refreshes = Math.max(0, session.tokens - 1);
  return (
    <footer className="status">
      <span data-testid="connection" data-status={status} className={`badge ${status}`}>
        {STATUS_LABELS[status] ?? status}
      </span>
      {session.expiresAt !== undefined && (
        <span data-testid="token" data-refreshes={refreshes}>
          {mode === 'clerk' ? 'Clerk' : 'Local'} token expires in {Math.max(0, Math.round((session.expiresAt - now) / 1000))} s ·
          refreshed {refreshes}×
        </span>
      )}
    </footer>
  );
}
