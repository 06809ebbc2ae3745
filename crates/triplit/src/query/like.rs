//! `like` patterns exactly as upstream's `ilike` runs them.
//!
//! Upstream escapes the pattern's regex characters, turns `%` into `.*`
//! and `_` into `.`, anchors it and compiles it with the `i` flag but
//! without `u`. So the pattern works on UTF-16 code units: `_` matches one
//! unit (an astral character needs two), `.` never matches a line
//! terminator, and case folding is the non-Unicode `Canonicalize` of
//! ECMAScript (upper-casing each unit, unless that changes its length or
//! maps a non-ASCII unit to ASCII).

/// Whether `text` matches the `like` pattern `pattern`.
pub fn like(text: &str, pattern: &str) -> bool {
    let text: Vec<u16> = text.encode_utf16().map(canonicalize).collect();
    let pattern: Vec<Token> = pattern
        .encode_utf16()
        .map(|u| match u {
            0x25 => Token::AnyRun,
            0x5F => Token::AnyOne,
            u => Token::Unit(canonicalize(u)),
        })
        .collect();
    glob(&text, &pattern)
}

#[derive(Clone, Copy)]
enum Token {
    /// `%` → `.*`.
    AnyRun,
    /// `_` → `.`.
    AnyOne,
    /// A literal code unit, canonicalized.
    Unit(u16),
}

/// ECMAScript's `Canonicalize(ch)` for a non-Unicode, case-insensitive
/// pattern.
fn canonicalize(unit: u16) -> u16 {
    if (0xD800..=0xDFFF).contains(&unit) {
        return unit;
    }
    let Some(c) = char::from_u32(u32::from(unit)) else {
        return unit;
    };
    let upper: String = c.to_uppercase().collect();
    let mut units = upper.encode_utf16();
    let (Some(cu), None) = (units.next(), units.next()) else {
        return unit;
    };
    if unit >= 128 && cu < 128 { unit } else { cu }
}

/// What `.` does not match.
fn is_line_terminator(unit: u16) -> bool {
    matches!(unit, 0x0A | 0x0D | 0x2028 | 0x2029)
}

fn glob(text: &[u16], pattern: &[Token]) -> bool {
    // reachable[i]: the pattern so far can end right before text[i].
    let n = text.len();
    let mut reachable = vec![false; n + 1];
    reachable[0] = true;
    for token in pattern {
        let mut next = vec![false; n + 1];
        match *token {
            Token::AnyRun => {
                let mut on = false;
                for i in 0..=n {
                    on = reachable[i] || (on && i > 0 && !is_line_terminator(text[i - 1]));
                    next[i] = on;
                }
            }
            Token::AnyOne => {
                for i in 1..=n {
                    next[i] = reachable[i - 1] && !is_line_terminator(text[i - 1]);
                }
            }
            Token::Unit(u) => {
                for i in 1..=n {
                    next[i] = reachable[i - 1] && text[i - 1] == u;
                }
            }
        }
        reachable = next;
    }
    reachable[n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_anchor_and_fold_case() {
        assert!(like("Hello World", "hello%"));
        assert!(!like("Hello World", "hello"));
        assert!(like("cat", "c_t"));
        assert!(like("a.b", "a.b"));
        assert!(!like("axb", "a.b"));
        assert!(like("", "%"));
        assert!(!like("", "_"));
    }

    #[test]
    fn dot_stops_at_line_terminators() {
        assert!(!like("a\nx", "%x%"));
        assert!(like("a\nx", "a\nx"));
        assert!(!like("a\u{2028}b", "a_b"));
    }

    #[test]
    fn underscore_is_one_utf16_unit() {
        assert!(!like("😀", "_"));
        assert!(like("😀", "__"));
        assert!(like("é", "_"));
    }

    #[test]
    fn case_folding_is_non_unicode_canonicalize() {
        assert!(like("ÉCOLE", "école"));
        // U+017F LATIN SMALL LETTER LONG S upper-cases to ASCII 'S', which
        // non-Unicode folding refuses.
        assert!(!like("\u{17F}", "s"));
        // 'ß' upper-cases to "SS" (two units) and is kept as is.
        assert!(like("ß", "ß"));
        assert!(!like("ß", "ss"));
    }
}
