// Filter values per kind: the "full" lists run on one path of each kind,
// the short lists on the others.

export const VALUES = {
  string: {
    full: ['Alice', 'alice', '', ' ', '😀 smile', 'line1\nline2', '\uFF21', '\u{1F600}', 'zz', 'Émile', null],
    short: ['Alice', '', 'o2', null],
  },
  number: {
    full: [0, -1, 3, 0.3, 0.1 + 0.2, 1e21, 42, -0.25, 9007199254740992, 1.5e-7, null, '3', true],
    short: [0, 3, -0.25, null],
  },
  boolean: {
    full: [true, false, null, 'true', 0],
    short: [true, false, null],
  },
  date: {
    full: [
      '2024-01-01T00:00:00.000Z', '1970-01-01T00:00:00.000Z', '2024-06-15T08:30:00.000Z',
      '+010000-01-01T00:00:00.000Z', '2024-01-01', '2024', 0, null,
    ],
    short: ['2024-01-01T00:00:00.000Z', '1970-01-01T00:00:00.000Z', null],
  },
  json: {
    full: ['dark', 'Dark', 3, 3.5, -1, null, true, 'plain string', 42, '', 'x'],
    short: ['dark', 3, null],
  },
};

export const IN_VALUES = {
  string: [[], ['Alice', 'Bob'], ['alice', 'ALICE', 'Zoë'], ['', 'z'], [null], 'Alice', ['o1', 'o3']],
  number: [[], [0, 3, 42], [-0.25, 1e21], [null], ['3'], 3],
  json: [[], ['dark', 3], [null, 'plain string'], [42, true]],
};

export const LIKE_PATTERNS = {
  full: [
    '%', '', 'a%', 'A%', '%e', '%li%', '_lice', 'al_ce', '%\n%', '%line2', 'line1%', 'line_line2',
    '%😀%', '_ smile', '50% off', '50%', '%.%', 'a.b', 'a_b', 'a+b', '(paren)', '[%', '%]', '%$',
    'dollar$', 'caret^', '%^', '#%', 'x y z', 'tab%', 'back\\slash', '%\\%', 'quote"s',
    'i%', 'İ%', 'ı%', '%ß%', 'ss', 'k', 'K', 'ſ', 's', '%ω%', 'naïve', 'NAÏVE', 'ǅ', 'ǆ', 'Ǆ', 'ﬁ', 'FI',
    '_', '__', '%_%', '___%', 'ａ', 'Ａ', '%ｕ%', null, 3,
  ],
  short: ['%', 'a%', '%e%', '_', '', null],
};

// Set item values for has/!has and the item operators.
export const SET_VALUES = {
  set_string: {
    has: ['red', 'Red', '😀', '', 'true', 'nope', 'a b', 'ünï', 1],
    item: ['red', 'c', '', 'R', null],
    in: [['red', 'blue'], [], ['😀']],
    like: ['%e%', 'R%', '_', '%'],
  },
  set_number: {
    has: [1, 0.5, 1e21, 0.1 + 0.2, 100, '1', -1, 7],
    item: [1, 2, 0.5, 100, null],
    in: [[1, 2], [], [1e21]],
    like: [],
  },
};
