//! JavaScript `Date` as Triplit's date type uses it: `Date.parse` (V8's
//! parser: the ES date-time format first, then its legacy fallback) and
//! `Date.prototype.toISOString`.
//!
//! Local time is UTC: upstream's server runs in UTC containers, and a
//! date-time without an offset is read as local time by JS. Times are
//! milliseconds since the epoch as `f64`; `None` is `NaN` (an invalid date).

mod lexer;
mod parser;

/// The largest absolute time value a JS `Date` can hold (±100,000,000 days).
const MAX_TIME_MS: f64 = 8.64e15;
/// V8 rejects local times beyond this before converting them to UTC.
const MAX_LOCAL_MS: f64 = MAX_TIME_MS + 864_000_000.0;

/// `TimeClip`: the time value a `Date` constructed from `ms` holds.
pub fn time_clip(ms: f64) -> Option<f64> {
    if !ms.is_finite() || ms.abs() > MAX_TIME_MS {
        return None;
    }
    Some(ms.trunc() + 0.0)
}

/// `Date.parse(s)`.
pub fn parse(s: &str) -> Option<f64> {
    let mut p = lexer::Parser::new(s);
    let fields = p.run()?;
    let day = make_day(fields.year, fields.month, fields.day)?;
    let time = fields.hour as f64 * 3_600_000.0
        + fields.minute as f64 * 60_000.0
        + fields.second as f64 * 1000.0
        + fields.ms as f64;
    let mut date = day * 86_400_000.0 + time;
    match fields.offset_s {
        None if date.abs() > MAX_LOCAL_MS => return None,
        None => {}
        Some(off) => {
            date -= off as f64 * 1000.0;
            if date.abs() > MAX_TIME_MS {
                return None;
            }
        }
    }
    time_clip(date)
}

/// `new Date(ms).toISOString()`; `None` where JS throws `RangeError`.
pub fn to_iso_string(ms: f64) -> Option<String> {
    let t = time_clip(ms)? as i64;
    let days = t.div_euclid(86_400_000);
    let rem = t.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let year = if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else {
        format!("{}{:06}", if y < 0 { '-' } else { '+' }, y.abs())
    };
    Some(format!(
        "{year}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    ))
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `MakeDay` for a 1-based month in `1..=12`; the day may overflow the month.
fn make_day(year: i64, month: i64, day: i64) -> Option<f64> {
    if !(-1_000_000..=1_000_000).contains(&year) {
        return None;
    }
    Some((days_from_civil(year, month, 1) + day - 1) as f64)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trip() {
        assert_eq!(parse("2020-01-01"), Some(1_577_836_800_000.0));
        assert_eq!(
            to_iso_string(0.0).as_deref(),
            Some("1970-01-01T00:00:00.000Z")
        );
        assert_eq!(
            to_iso_string(-1.0).as_deref(),
            Some("1969-12-31T23:59:59.999Z")
        );
        assert_eq!(
            parse("+010000-01-01T00:00:00Z")
                .and_then(to_iso_string)
                .as_deref(),
            Some("+010000-01-01T00:00:00.000Z")
        );
        assert_eq!(to_iso_string(8.64e15 + 1.0), None);
        assert_eq!(parse("garbage"), None);
    }
}
