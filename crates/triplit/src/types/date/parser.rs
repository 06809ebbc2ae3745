//! V8's date-string grammar (`DateParser::Parse`): the ES date-time format
//! first (`ParseES5DateTime`), then the legacy rules for whatever is left,
//! and the day/time/zone composers that turn the pieces into fields.

use super::lexer::{Kw, Parser, Tok};

/// An unset composer slot (V8's `kNone`).
const NONE: i64 = i64::MAX;

/// The parsed components; `offset_s` is `None` for local time.
pub(super) struct Fields {
    pub(super) year: i64,
    pub(super) month: i64,
    pub(super) day: i64,
    pub(super) hour: i64,
    pub(super) minute: i64,
    pub(super) second: i64,
    pub(super) ms: i64,
    pub(super) offset_s: Option<i64>,
}

/// Day components (`DayComposer`).
#[derive(Default)]
struct Day {
    comp: Vec<i64>,
    named_month: Option<i64>,
    iso: bool,
}

/// Time components (`TimeComposer`).
#[derive(Default)]
struct Time {
    comp: Vec<i64>,
    hour_offset: Option<i64>,
}

impl Time {
    fn add(&mut self, n: i64) -> bool {
        if self.comp.len() < 4 {
            self.comp.push(n);
            true
        } else {
            false
        }
    }
    fn add_final(&mut self, n: i64) -> bool {
        if !self.add(n) {
            return false;
        }
        self.comp.resize(4, 0);
        true
    }
    fn expecting(&self, n: i64) -> bool {
        match self.comp.len() {
            1 | 2 => (0..60).contains(&n),
            3 => (0..1000).contains(&n),
            _ => false,
        }
    }
}

/// Time zone (`TimeZoneComposer`): `NONE` marks unset parts.
struct Zone {
    sign: i64,
    hour: i64,
    minute: i64,
}

impl Zone {
    fn set(&mut self, hours: i64) {
        self.sign = if hours < 0 { -1 } else { 1 };
        self.hour = hours.abs();
        self.minute = 0;
    }
    fn expecting(&self, n: i64) -> bool {
        self.hour != NONE && self.minute == NONE && (0..60).contains(&n)
    }
    fn is_utc(&self) -> bool {
        self.hour == 0 && self.minute == 0
    }
}

impl Parser {
    pub(super) fn run(&mut self) -> Option<Fields> {
        let mut day = Day::default();
        let mut time = Time::default();
        let mut tz = Zone {
            sign: NONE,
            hour: NONE,
            minute: NONE,
        };
        let first = self.es5(&mut day, &mut time, &mut tz);
        if first == Tok::Invalid {
            return None;
        }
        let mut has_number = !day.comp.is_empty();
        let mut tok = first;
        while tok != Tok::End {
            match tok {
                Tok::Num { n, .. } => {
                    has_number = true;
                    if self.skip(':') {
                        if self.skip(':') {
                            if !time.comp.is_empty() {
                                return None;
                            }
                            time.add(n);
                            time.add(0);
                        } else {
                            if !time.add(n) {
                                return None;
                            }
                            if self.peek() == Tok::Sym('.') {
                                self.next();
                            }
                        }
                    } else if self.skip('.') && time.expecting(n) {
                        time.add(n);
                        let Tok::Num { n: frac, len } = self.peek() else {
                            return None;
                        };
                        self.next();
                        time.add_final(read_ms(frac, len));
                    } else if tz.expecting(n) {
                        tz.minute = n;
                    } else if time.expecting(n) {
                        time.add_final(n);
                        let p = self.peek();
                        if !(p == Tok::End || p == Tok::Space || p.is_z() || p.sign().is_some()) {
                            return None;
                        }
                    } else {
                        if day.comp.len() >= 3 {
                            return None;
                        }
                        day.comp.push(n);
                        self.skip('-');
                    }
                }
                Tok::Word { kw, .. } => match kw {
                    Kw::AmPm(off) if !time.comp.is_empty() => time.hour_offset = Some(off),
                    Kw::Month(m) => {
                        day.named_month = Some(m);
                        self.skip('-');
                    }
                    Kw::Zone(h) if has_number => tz.set(h),
                    _ => {
                        if has_number || matches!(self.peek(), Tok::Num { .. }) {
                            return None;
                        }
                    }
                },
                t if t.sign().is_some() && (tz.is_utc() || !time.comp.is_empty()) => {
                    tz.sign = t.sign().unwrap_or(1);
                    let (mut n, mut len) = (0, 0);
                    if let Tok::Num { n: v, len: l } = self.peek() {
                        self.next();
                        (n, len) = (v, l);
                    }
                    has_number = true;
                    if self.peek() == Tok::Sym(':') {
                        tz.hour = n;
                        tz.minute = NONE;
                    } else if len == 1 || len == 2 {
                        tz.hour = n;
                        tz.minute = 0;
                    } else if len == 3 || len == 4 {
                        tz.hour = n / 100;
                        tz.minute = n % 100;
                    } else {
                        return None;
                    }
                }
                t if (t.sign().is_some() || t == Tok::Sym(')')) && has_number => return None,
                _ => {}
            }
            tok = self.next();
        }
        finish(day, time, tz)
    }

    /// The ES date-time format; returns the first token it did not consume
    /// (`End` on full success, `Invalid` when the input cannot be a date).
    fn es5(&mut self, day: &mut Day, time: &mut Time, tz: &mut Zone) -> Tok {
        if let Some(sign) = self.peek().sign() {
            let sign_tok = self.next();
            let Some(year) = self.peek().fixed(6) else {
                return sign_tok;
            };
            // The year is consumed even when it is rejected (`-000000`).
            self.next();
            if sign < 0 && year == 0 {
                return sign_tok;
            }
            day.comp.push(sign * year);
        } else if let Some(year) = self.peek().fixed(4) {
            self.next();
            day.comp.push(year);
        } else {
            return self.next();
        }
        if self.skip('-') {
            match self.peek().fixed(2) {
                Some(m) if (1..=12).contains(&m) => {
                    self.next();
                    day.comp.push(m);
                }
                _ => return self.next(),
            }
            if self.skip('-') {
                match self.peek().fixed(2) {
                    Some(d) if (1..=31).contains(&d) => {
                        self.next();
                        day.comp.push(d);
                    }
                    _ => return self.next(),
                }
            }
        }
        if !matches!(
            self.peek(),
            Tok::Word {
                kw: Kw::TimeSep,
                ..
            }
        ) {
            if self.peek() != Tok::End {
                return self.next();
            }
        } else {
            self.next();
            let Some(h) = self.peek().fixed(2).filter(|h| (0..=24).contains(h)) else {
                return Tok::Invalid;
            };
            let h24 = h == 24;
            self.next();
            time.add(h);
            if !self.skip(':') {
                return Tok::Invalid;
            }
            let Some(m) = self
                .peek()
                .fixed(2)
                .filter(|m| (0..60).contains(m) && !(h24 && *m > 0))
            else {
                return Tok::Invalid;
            };
            self.next();
            time.add(m);
            if self.skip(':') {
                let Some(s) = self
                    .peek()
                    .fixed(2)
                    .filter(|s| (0..60).contains(s) && !(h24 && *s > 0))
                else {
                    return Tok::Invalid;
                };
                self.next();
                time.add(s);
                if self.skip('.') {
                    let Tok::Num { n, len } = self.peek() else {
                        return Tok::Invalid;
                    };
                    if h24 && n > 0 {
                        return Tok::Invalid;
                    }
                    self.next();
                    time.add(read_ms(n, len));
                }
            }
            if self.peek().is_z() {
                self.next();
                tz.set(0);
            } else if let Some(sign) = self.peek().sign() {
                self.next();
                tz.sign = sign;
                if let Some(hm) = self.peek().fixed(4) {
                    self.next();
                    let (h, m) = (hm / 100, hm % 100);
                    if !(0..24).contains(&h) || !(0..60).contains(&m) {
                        return Tok::Invalid;
                    }
                    tz.hour = h;
                    tz.minute = m;
                } else {
                    let Some(h) = self.peek().fixed(2).filter(|h| (0..24).contains(h)) else {
                        return Tok::Invalid;
                    };
                    self.next();
                    tz.hour = h;
                    if !self.skip(':') {
                        return Tok::Invalid;
                    }
                    let Some(m) = self.peek().fixed(2).filter(|m| (0..60).contains(m)) else {
                        return Tok::Invalid;
                    };
                    self.next();
                    tz.minute = m;
                }
            }
            if self.peek() != Tok::End {
                return Tok::Invalid;
            }
        }
        if tz.hour == NONE && time.comp.is_empty() {
            tz.set(0);
        }
        day.iso = true;
        Tok::End
    }
}

/// Three significant digits of a fraction of `len` digits.
fn read_ms(n: i64, len: usize) -> i64 {
    match len {
        1 => n * 100,
        2 => n * 10,
        3 => n,
        _ => n / 10_i64.pow(len.min(9) as u32 - 3),
    }
}

fn finish(mut day: Day, mut time: Time, tz: Zone) -> Option<Fields> {
    if day.comp.is_empty() {
        return None;
    }
    day.comp.resize(3, 1);
    let c = &day.comp;
    let is_day = |n: i64| (1..=31).contains(&n);
    let (mut year, month, d) = match day.named_month {
        None if day.iso || !is_day(c[0]) => (c[0], c[1], c[2]),
        None => (c[2], c[0], c[1]),
        Some(m) if !is_day(c[0]) => (c[0], m, c[1]),
        Some(m) => (c[1], m, c[0]),
    };
    if !day.iso {
        if (0..=49).contains(&year) {
            year += 2000;
        } else if (50..=99).contains(&year) {
            year += 1900;
        }
    }
    if !(1..=12).contains(&month) || !is_day(d) {
        return None;
    }
    time.comp.resize(4, 0);
    let (mut h, mi, s, ms) = (time.comp[0], time.comp[1], time.comp[2], time.comp[3]);
    if let Some(off) = time.hour_offset {
        if !(0..=12).contains(&h) {
            return None;
        }
        h = h % 12 + off;
    }
    let valid = (0..24).contains(&h)
        && (0..60).contains(&mi)
        && (0..60).contains(&s)
        && (0..1000).contains(&ms);
    if !(valid || (h == 24 && mi == 0 && s == 0 && ms == 0)) {
        return None;
    }
    let offset_s = if tz.sign == NONE {
        None
    } else {
        let hour = if tz.hour == NONE { 0 } else { tz.hour };
        let minute = if tz.minute == NONE { 0 } else { tz.minute };
        let total = hour * 3600 + minute * 60;
        if total > (1 << 30) - 1 {
            return None;
        }
        Some(if tz.sign < 0 { -total } else { total })
    };
    Some(Fields {
        year,
        month,
        day: d,
        hour: h,
        minute: mi,
        second: s,
        ms,
        offset_s,
    })
}
