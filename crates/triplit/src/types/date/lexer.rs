//! The tokenizer of V8's date parser (`DateStringTokenizer`): numbers,
//! the symbols `: - + . )`, words (month names, `am`/`pm`, zone names, `T`),
//! white space, and anything else (parenthesised text included) as unknown.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum Kw {
    Month(i64),
    AmPm(i64),
    Zone(i64),
    TimeSep,
    Other,
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum Tok {
    Num { n: i64, len: usize },
    Sym(char),
    Word { kw: Kw, len: usize },
    Space,
    Unknown,
    End,
    Invalid,
}

impl Tok {
    pub(super) fn fixed(self, l: usize) -> Option<i64> {
        match self {
            Tok::Num { n, len } if len == l => Some(n),
            _ => None,
        }
    }
    pub(super) fn is_z(self) -> bool {
        matches!(
            self,
            Tok::Word {
                kw: Kw::Zone(0),
                len: 1
            }
        )
    }
    pub(super) fn sign(self) -> Option<i64> {
        match self {
            Tok::Sym('+') => Some(1),
            Tok::Sym('-') => Some(-1),
            _ => None,
        }
    }
}

pub(super) fn is_ws(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202F}'
                | '\u{205F}'
                | '\u{3000}'
                | '\u{FEFF}'
    )
}

fn keyword(prefix: &[char], len: usize) -> Kw {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let p: String = prefix.iter().collect();
    if let Some(i) = MONTHS.iter().position(|m| *m == p) {
        return Kw::Month(i as i64 + 1);
    }
    if len > 3 {
        return Kw::Other;
    }
    match p.trim_end_matches('\0') {
        "am" => Kw::AmPm(0),
        "pm" => Kw::AmPm(12),
        "ut" | "utc" | "z" | "gmt" => Kw::Zone(0),
        "cdt" => Kw::Zone(-5),
        "cst" => Kw::Zone(-6),
        "edt" => Kw::Zone(-4),
        "est" => Kw::Zone(-5),
        "mdt" => Kw::Zone(-6),
        "mst" => Kw::Zone(-7),
        "pdt" => Kw::Zone(-7),
        "pst" => Kw::Zone(-8),
        "t" => Kw::TimeSep,
        _ => Kw::Other,
    }
}

/// A scanner over a date string with one token of lookahead.
pub(super) struct Parser {
    chars: Vec<char>,
    pos: usize,
    peeked: Option<Tok>,
}

impl Parser {
    pub(super) fn new(s: &str) -> Self {
        Self {
            chars: s.chars().collect(),
            pos: 0,
            peeked: None,
        }
    }

    fn ch(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn scan(&mut self) -> Tok {
        let Some(c) = self.ch() else { return Tok::End };
        let start = self.pos;
        if c.is_ascii_digit() {
            let mut n: i64 = 0;
            let mut significant = 0;
            while self.ch() == Some('0') {
                self.pos += 1;
            }
            while let Some(d) = self.ch().and_then(|c| c.to_digit(10)) {
                if significant < 9 {
                    n = n * 10 + i64::from(d);
                }
                significant += 1;
                self.pos += 1;
            }
            return Tok::Num {
                n,
                len: self.pos - start,
            };
        }
        if matches!(c, ':' | '-' | '+' | '.' | ')') {
            self.pos += 1;
            return Tok::Sym(c);
        }
        if c >= 'A' && !is_ws(c) {
            let mut prefix = ['\0'; 3];
            let mut len = 0;
            let mut count = 0;
            while let Some(w) = self.ch().filter(|&w| w >= 'A' && !is_ws(w)) {
                if let Some(slot) = prefix.get_mut(count) {
                    *slot = if w.is_ascii() {
                        ((w as u8) | 0x20) as char
                    } else {
                        w
                    };
                }
                count += 1;
                len += w.len_utf16();
                self.pos += 1;
            }
            return Tok::Word {
                kw: keyword(&prefix, len),
                len,
            };
        }
        if is_ws(c) {
            while self.ch().is_some_and(is_ws) {
                self.pos += 1;
            }
            return Tok::Space;
        }
        if c == '(' {
            let mut balance = 0;
            loop {
                match self.ch() {
                    Some(')') => balance -= 1,
                    Some('(') => balance += 1,
                    _ => {}
                }
                self.pos += 1;
                if balance <= 0 || self.ch().is_none() {
                    break;
                }
            }
            return Tok::Unknown;
        }
        self.pos += 1;
        Tok::Unknown
    }

    pub(super) fn next(&mut self) -> Tok {
        self.peeked.take().unwrap_or_else(|| self.scan())
    }

    pub(super) fn peek(&mut self) -> Tok {
        if self.peeked.is_none() {
            self.peeked = Some(self.scan());
        }
        self.peeked.unwrap_or(Tok::End)
    }

    pub(super) fn skip(&mut self, c: char) -> bool {
        if self.peek() == Tok::Sym(c) {
            self.next();
            true
        } else {
            false
        }
    }
}
