//! Event timestamps in every form clients send them, as unix seconds: RFC 3339 strings with or
//! without a fraction (up to nanoseconds) or a zone (naive means UTC), numbers, numeric strings.

use serde_json::Value;

/// Unix seconds for a timestamp value; `None` for anything unreadable (never panics).
pub fn parse_timestamp(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        Value::String(s) => parse_timestamp_str(s),
        _ => None,
    }
}

/// Unix seconds for `1795497360.44`, `2026-11-24T05:15:46Z`, `2026-11-24T05:16:17.796877642Z`,
/// `2024-05-01T12:00:00` (UTC), `2024-05-01 12:00:00.5+02:00`, `2024-05-01`.
pub fn parse_timestamp_str(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        && s.bytes().filter(|&b| b == b'-').count() <= 1
    {
        return s.parse::<f64>().ok().filter(|f| f.is_finite());
    }
    parse_rfc3339(s)
}

fn parse_rfc3339(s: &str) -> Option<f64> {
    let mut c = Cursor {
        bytes: s.as_bytes(),
        pos: 0,
    };
    let year = c.digits(4)?;
    c.expect(b'-')?;
    let month = c.digits(2)?;
    c.expect(b'-')?;
    let day = c.digits(2)?;
    let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?)
            .ok()?;
    let days = i64::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY;
    let mut seconds = days as f64 * 86_400.0;
    if c.at_end() {
        return Some(seconds);
    }
    if !matches!(c.next()?, b'T' | b't' | b' ') {
        return None;
    }
    let hour = c.digits(2)?;
    c.expect(b':')?;
    let minute = c.digits(2)?;
    let second = if c.peek() == Some(b':') {
        c.next();
        c.digits(2)?
    } else {
        0
    };
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    seconds += f64::from(hour * 3600 + minute * 60 + second);
    if matches!(c.peek(), Some(b'.' | b',')) {
        c.next();
        seconds += c.fraction()?;
    }
    let offset = match c.next() {
        None | Some(b'Z' | b'z') => 0,
        Some(sign @ (b'+' | b'-')) => {
            let hours = c.digits(2)?;
            if c.peek() == Some(b':') {
                c.next();
            }
            let minutes = if c.at_end() { 0 } else { c.digits(2)? };
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = i64::from(hours * 3600 + minutes * 60);
            if sign == b'-' { -offset } else { offset }
        }
        Some(_) => return None,
    };
    c.at_end().then_some(seconds - offset as f64)
}

/// `time::Date::to_julian_day` of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let mut value = 0u32;
        for _ in 0..n {
            let d = self.next().filter(u8::is_ascii_digit)?;
            value = value * 10 + u32::from(d - b'0');
        }
        Some(value)
    }

    /// One or more digits after the decimal point, as a fraction of a second. Digits past
    /// nanoseconds are read and ignored.
    fn fraction(&mut self) -> Option<f64> {
        let (mut value, mut scale, mut count) = (0u64, 1u64, 0usize);
        while let Some(d) = self.peek().filter(u8::is_ascii_digit) {
            self.pos += 1;
            if count < 9 {
                value = value * 10 + u64::from(d - b'0');
                scale *= 10;
            }
            count += 1;
        }
        (count > 0).then(|| value as f64 / scale as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T: f64 = 1_795_497_346.0; // 2026-11-24T05:15:46Z

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-6)
    }

    #[test]
    fn forms_clients_send() {
        let cases = [
            ("2026-11-24T05:15:46Z", T),                         // raven
            ("2026-11-24T05:15:46", T),                          // naive: UTC
            ("2026-11-24T05:15:46.900079Z", T + 0.900079),       // python sdk
            ("2026-11-24T05:15:46.796877642Z", T + 0.796877642), // rust: nanoseconds
            ("2026-11-24T05:15:46.1234567891234Z", T + 0.123456789),
            ("2026-11-24t05:15:46z", T),
            ("2026-11-24 05:15:46", T),
            ("2026-11-24T07:15:46+02:00", T),
            ("2026-11-24T00:15:46-0500", T),
            ("2026-11-24T07:15:46.5+02", T + 0.5),
            ("2026-11-24T05:15Z", T - 46.0),
            ("2026-11-24", T - 5.0 * 3600.0 - 15.0 * 60.0 - 46.0),
            ("1970-01-01T00:00:00Z", 0.0),
            ("1795497346.0758593", T + 0.0758593),
            (" 1795497346 ", T),
        ];
        for (s, want) in cases {
            assert!(
                close(parse_timestamp_str(s), want),
                "{s}: {:?} != {want}",
                parse_timestamp_str(s)
            );
        }
        assert!(close(
            parse_timestamp(&json!(1795497360.44737)),
            1795497360.44737
        ));
        assert!(close(parse_timestamp(&json!(T as u64)), T));
    }

    #[test]
    fn unreadable_forms() {
        for s in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-24T24:00:00Z",
            "2026-11-24T05:15:46.Z",
            "2026-11-24T05:15:46Zjunk",
            "2026-11-24X05:15:46",
            "NaN",
            "inf",
            "2026-11-24T05:15:46+25:00",
            "1-2-3",
            "２０２６-11-24",
        ] {
            assert_eq!(parse_timestamp_str(s), None, "{s}");
        }
        for v in [json!(null), json!(true), json!([]), json!({})] {
            assert_eq!(parse_timestamp(&v), None);
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "[0-9TZtz:+. -]{0,40}|\\PC{0,40}") {
            let _ = parse_timestamp_str(&s);
        }
    }
}
