// The app's schema: one `todos` collection with a shared list and private
// lists, guarded by permissions that the server (Ferry) enforces and the
// client applies to its local cache.
//
// `ferry dev --schema` reads the same schema as JSON: scripts/schema-json.mjs
// writes it from this file (npm run schema:json), and the start script and
// the e2e suite regenerate it on every run, so the two never drift apart.
import { Schema as S, or, type Roles } from '@triplit/client';

// A signed-in user is anyone whose verified token has a `sub` claim (Clerk's
// user id); `$role.userId` is that id in the permission filters below.
export const roles: Roles = {
  user: { match: { sub: '$userId' } },
};

const isAuthor = ['authorId', '=', '$role.userId'] as const;
const isShared = ['shared', '=', true] as const;

export const schema = S.Collections({
  todos: {
    schema: S.Schema({
      id: S.Id(),
      text: S.String(),
      completed: S.Boolean({ default: false }),
      // The Clerk user id (`sub`) of whoever created the todo.
      authorId: S.String(),
      // Shared todos are on the list every signed-in user sees; the others
      // are private to their author.
      shared: S.Boolean({ default: false }),
      createdAt: S.Date({ default: S.Default.now() }),
    }),
    permissions: {
      user: {
        // The shared list, plus your own private todos.
        read: { filter: [or([isShared, isAuthor])] },
        // You can only create todos in your own name…
        insert: { filter: [isAuthor] },
        // …and only the author may change or delete a todo (also a shared
        // one), and may not hand it to someone else.
        update: { filter: [isAuthor] },
        postUpdate: { filter: [isAuthor] },
        delete: { filter: [isAuthor] },
      },
    },
  },
});

export type Todo = {
  id: string;
  text: string;
  completed: boolean;
  authorId: string;
  shared: boolean;
  createdAt: Date;
};
