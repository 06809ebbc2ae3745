// The parity schema, written directly as Triplit's schema JSON (what the
// S.* builders evaluate to and what /schema returns).

const str = (config = {}) => ({ type: 'string', config });
const num = (config = {}) => ({ type: 'number', config });
const bool = (config = {}) => ({ type: 'boolean', config });
const date = (config = {}) => ({ type: 'date', config });
const json = (config = {}) => ({ type: 'json', config });
const set = (items, config = {}) => ({ type: 'set', items, config });
const record = (properties, config = {}) => ({ type: 'record', config, properties });
const opt = { optional: true };
const optNull = { optional: true, nullable: true };
const id = () => str({ nullable: false, default: { func: 'nanoid', args: null } });

const byId = (collectionName, variable) => ({
  query: { collectionName, where: [['id', '=', variable]] },
  cardinality: 'one',
});
const many = (collectionName, q) => ({
  query: { collectionName, ...q },
  cardinality: 'many',
});
const one = (collectionName, q) => ({
  query: { collectionName, ...q },
  cardinality: 'one',
});

export const schema = {
  roles: {
    // Several roles can match one token.
    user: { match: { sub: '$userId' } },
    admin: { match: { role: 'admin', sub: '$adminId' } },
    member: { match: { org: '$orgId' } },
    anon: { match: { 'x-triplit-token-type': 'anon' } },
    // A null matcher matches any present claim value.
    paid: { match: { plan: null } },
  },
  collections: {
    users: {
      schema: record({
        id: id(),
        name: str(),
        handle: str(optNull),
        age: num(opt),
        active: bool(),
        orgId: str(opt),
        kind: str({ enum: ['admin', 'member', 'guest'] }),
        joined: date(),
        tags: set(str()),
        scores: set(num()),
        profile: record({
          bio: str(opt),
          level: num(),
          address: record({ city: str(), zip: str(optNull) }),
        }),
        settings: json(opt),
      }),
      relationships: {
        posts: many('posts', { where: [['authorId', '=', '$id']] }),
        latestPost: one('posts', {
          where: [['authorId', '=', '$id']],
          order: [['created', 'DESC']],
        }),
        comments: many('comments', { where: [['authorId', '=', '$id']] }),
        orgmates: many('users', {
          where: [
            ['orgId', '=', '$orgId'],
            ['id', '!=', '$id'],
          ],
        }),
      },
      permissions: {
        user: {
          read: {
            filter: [
              {
                mod: 'or',
                filters: [
                  ['id', '=', '$role.userId'],
                  ['active', '=', true],
                ],
              },
            ],
          },
        },
        admin: { read: { filter: [true] } },
        member: { read: { filter: [['orgId', '=', '$role.orgId']] } },
        anon: {
          read: {
            filter: [
              ['active', '=', true],
              ['profile.level', '>', 1],
            ],
          },
        },
      },
    },
    posts: {
      // No permissions key: readable by everyone.
      schema: record({
        id: id(),
        title: str(),
        body: str(),
        authorId: str(),
        editorId: str(optNull),
        score: num(),
        published: bool(),
        created: date(),
        updated: date(optNull),
        tags: set(str()),
        nums: set(num()),
        meta: record({
          prio: num(),
          label: str(opt),
          flags: record({ pinned: bool(), color: str(optNull) }),
        }),
        extra: json(opt),
        rating: num(optNull),
      }),
      relationships: {
        author: byId('users', '$authorId'),
        editor: byId('users', '$editorId'),
        comments: many('comments', { where: [['postId', '=', '$id']] }),
        topComments: many('comments', {
          where: [['postId', '=', '$id']],
          order: [
            ['score', 'DESC'],
            ['id', 'ASC'],
          ],
          limit: 2,
        }),
        firstComment: one('comments', {
          where: [['postId', '=', '$id']],
          order: [['created', 'ASC']],
        }),
        sameAuthor: many('posts', {
          where: [
            ['authorId', '=', '$authorId'],
            ['id', '!=', '$id'],
          ],
        }),
      },
    },
    comments: {
      schema: record({
        id: id(),
        postId: str(),
        authorId: str(),
        parentId: str(opt),
        text: str(),
        score: num(),
        created: date(),
        hidden: bool(opt),
      }),
      relationships: {
        post: byId('posts', '$postId'),
        author: byId('users', '$authorId'),
        parent: byId('comments', '$parentId'),
        replies: many('comments', { where: [['parentId', '=', '$id']] }),
      },
      permissions: {
        user: {
          read: {
            filter: [
              {
                mod: 'or',
                filters: [
                  ['authorId', '=', '$role.userId'],
                  ['post.published', '=', true],
                ],
              },
            ],
          },
        },
        admin: { read: { filter: [true] } },
        member: { read: { filter: [['author.orgId', '=', '$role.orgId']] } },
      },
    },
    secrets: {
      schema: record({ id: id(), ownerId: str(), value: str() }),
      relationships: { owner: byId('users', '$ownerId') },
      // An empty permissions object denies everything.
      permissions: {},
    },
    notes: {
      schema: record({ id: id(), ownerId: str(), text: str(), pinned: bool() }),
      relationships: { owner: byId('users', '$ownerId') },
      permissions: {
        // `user` has no read entry; `paid` has an empty filter list.
        user: { insert: { filter: [true] } },
        paid: { read: { filter: [] } },
        admin: { read: { filter: [['ownerId', '=', '$token.sub']] } },
        member: {
          read: {
            filter: [{ exists: { _extends: 'owner', where: [['orgId', '=', '$role.orgId']] } }],
          },
        },
      },
    },
    shares: {
      schema: record({ id: id(), code: str(), postId: str(), views: num() }),
      relationships: { post: byId('posts', '$postId') },
      permissions: {
        // "Selective public access": readable when the query names the code.
        anon: { read: { filter: [['code', '=', '$query.code']] } },
        user: {
          read: {
            filter: [
              {
                mod: 'or',
                filters: [
                  ['code', '=', '$query.code'],
                  ['post.authorId', '=', '$role.userId'],
                ],
              },
            ],
          },
        },
        admin: { read: { filter: [true] } },
      },
    },
  },
};
