// Value pools shared by the dataset and the query corpus. They are picked
// for the places engines tend to disagree: case folding, UTF-16 versus
// code-point order, regex metacharacters in `like`, newlines, float
// formatting, ties, null versus missing.

export const STRINGS = [
  'Alice', 'alice', 'ALICE', 'Bob', 'bob', 'Émile', 'émile', 'Zoë', 'zoe',
  '😀 smile', 'smile 😀', 'line1\nline2', 'multi\nline\ntext', '', ' ',
  '50% off', 'under_score', 'a.b', 'a+b', '(paren)', '[bracket]', 'ß', 'SS',
  'İstanbul', 'istanbul', 'ıi', '日本語', '中文', 'ｆｕｌｌ', '\uFF21', 'z', 'Z',
  'aa', 'aA', 'tab\there', 'back\\slash', 'quote"s', 'dollar$', 'caret^',
  '#hash', 'x y z', 'ab%cd', 'ab_cd', 'naïve', 'NAÏVE', 'ǅ', 'Ω', 'ω', 'ﬁ',
  'K', 'k', 'ſ', 's', '\u{1F600}', '\u{1F601}a', '\uFFFD', 'the end.',
];

export const NUMBERS = [
  0, 1, -1, 0.5, -0.25, 0.1 + 0.2, 3, 42, 1e21, -1e21, 9007199254740992,
  1.5e-7, 100, 2, 7, -7.5, 123.456, 1e300, -0.000001,
];

export const DATES = [
  '1969-12-31T23:59:59.999Z', '1970-01-01T00:00:00.000Z',
  '2000-02-29T12:00:00.000Z', '2024-01-01T00:00:00.000Z',
  '2024-06-15T08:30:00.000Z', '2024-06-15T08:30:00.001Z',
  '2038-01-19T03:14:08.000Z', '2099-12-31T23:59:59.000Z',
  '+010000-01-01T00:00:00.000Z',
];

export const TAGS = ['red', 'green', 'blue', 'Red', '😀', 'a b', '', '1', 'true', 'ünï'];
export const SET_NUMBERS = [1, 2, 3, -1, 0.5, 10, 100, 1e21, 0.1 + 0.2];

export const JSONS = [
  { theme: 'dark', n: 3, arr: [1, 2], nested: { a: { b: 'x' } } },
  { theme: 'light', n: -1, arr: [], nested: { a: { b: 'y' } } },
  { theme: 'Dark', n: 3.5, tags: ['a', 'b'] },
  [1, 2, 3],
  ['x', 'y'],
  'plain string',
  42,
  true,
  // No top-level JSON `null`: upstream's path lookup crashes on a filter
  // or select through it (`settings.theme` over `settings: null`).
  {},
  { n: null, theme: '' },
  { deep: { deeper: { deepest: 1 } } },
];

export const ORGS = ['o1', 'o2', 'o3'];
export const COLORS = ['red', 'Red', 'blue', '', 'ünï'];
