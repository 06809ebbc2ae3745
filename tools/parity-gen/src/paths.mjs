// Attribute paths of the parity schema with the kind of value under each,
// for building filters, orders and cursors.

export const PATHS = {
  users: {
    id: 'string',
    name: 'string',
    handle: 'string',
    age: 'number',
    active: 'boolean',
    orgId: 'string',
    kind: 'string',
    joined: 'date',
    tags: 'set_string',
    scores: 'set_number',
    profile: 'record',
    'profile.bio': 'string',
    'profile.level': 'number',
    'profile.address': 'record',
    'profile.address.city': 'string',
    'profile.address.zip': 'string',
    settings: 'json',
    'settings.theme': 'json',
    'settings.n': 'json',
    'settings.nested.a.b': 'json',
    'settings.arr': 'json',
    'settings.arr.0': 'json',
  },
  posts: {
    id: 'string',
    title: 'string',
    body: 'string',
    authorId: 'string',
    editorId: 'string',
    score: 'number',
    published: 'boolean',
    created: 'date',
    updated: 'date',
    tags: 'set_string',
    nums: 'set_number',
    meta: 'record',
    'meta.prio': 'number',
    'meta.label': 'string',
    'meta.flags': 'record',
    'meta.flags.pinned': 'boolean',
    'meta.flags.color': 'string',
    extra: 'json',
    'extra.theme': 'json',
    'extra.n': 'json',
    'extra.tags': 'json',
    rating: 'number',
  },
  comments: {
    id: 'string',
    postId: 'string',
    authorId: 'string',
    parentId: 'string',
    text: 'string',
    score: 'number',
    created: 'date',
    hidden: 'boolean',
  },
};

// Sortable paths (not sets, records or many-relations). JSON paths sort
// with compareValue's cross-type order.
export const SORTABLE = {
  users: ['id', 'name', 'handle', 'age', 'active', 'orgId', 'kind', 'joined', 'profile.level',
    'profile.address.city', 'profile.address.zip', 'profile.bio', 'settings.theme', 'settings.n'],
  posts: ['id', 'title', 'body', 'authorId', 'editorId', 'score', 'published', 'created', 'updated',
    'meta.prio', 'meta.label', 'meta.flags.pinned', 'meta.flags.color', 'rating', 'extra.n'],
  comments: ['id', 'postId', 'authorId', 'parentId', 'text', 'score', 'created', 'hidden'],
};

// Paths through cardinality-one relations, usable in `order` (their
// targets always exist) and in `where`.
export const RELATIONAL_ORDER = {
  posts: ['author.name', 'author.age', 'author.profile.level', 'author.joined'],
  comments: ['post.score', 'post.title', 'post.created', 'author.name', 'post.author.name'],
  users: [],
};

export const RELATIONAL_WHERE = {
  posts: [
    ['author.name', 'string'],
    ['author.age', 'number'],
    ['author.active', 'boolean'],
    ['author.tags', 'set_string'],
    ['author.profile.level', 'number'],
    ['editor.name', 'string'],
    ['comments.score', 'number'],
    ['comments.text', 'string'],
    ['comments.author.name', 'string'],
    ['firstComment.score', 'number'],
  ],
  comments: [
    ['post.score', 'number'],
    ['post.published', 'boolean'],
    ['post.title', 'string'],
    ['post.tags', 'set_string'],
    ['author.name', 'string'],
    ['author.orgId', 'string'],
    ['post.author.name', 'string'],
    ['parent.score', 'number'],
    ['replies.score', 'number'],
  ],
  users: [
    ['posts.score', 'number'],
    ['posts.published', 'boolean'],
    ['comments.score', 'number'],
    ['latestPost.title', 'string'],
    ['orgmates.name', 'string'],
  ],
};

export const OPS = {
  string: ['=', '!=', '<', '>', '<=', '>=', 'in', 'nin', 'like', 'nlike', 'isDefined'],
  number: ['=', '!=', '<', '>', '<=', '>=', 'in', 'nin', 'isDefined'],
  boolean: ['=', '!=', '<', '>', '<=', '>=', 'isDefined'],
  date: ['=', '!=', '<', '>', '<=', '>=', 'isDefined'],
  record: ['isDefined'],
  set_string: ['has', '!has', 'isDefined', '=', '!=', '<', '>', '<=', '>=', 'in', 'nin', 'like', 'nlike'],
  set_number: ['has', '!has', 'isDefined', '=', '!=', '<', '>', '<=', '>=', 'in', 'nin'],
  json: ['=', '!=', '<', '>', '<=', '>=', 'in', 'nin', 'like', 'nlike', 'isDefined', 'has', '!has'],
};

// Operators the type does not support (upstream rejects them when it
// prepares the query).
export const INVALID_OPS = {
  string: ['has', '!has', 'foo'],
  number: ['like', 'nlike', 'has'],
  boolean: ['in', 'nin', 'like'],
  date: ['in', 'like', 'has'],
  record: ['=', '!=', 'in', 'like', 'has'],
  set_string: ['foo'],
  set_number: ['like', 'nlike'],
  json: ['foo'],
};
