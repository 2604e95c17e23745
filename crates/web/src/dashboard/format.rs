//! Small formatting helpers for pages: times ("3 min ago" and UTC), counts, durations, and URL
//! query strings.

/// `2026-05-01 12:00:03 UTC`
pub fn utc(ts: f64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(ts.floor() as i64)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| format!("{ts}"))
}

/// `12 s ago`, `3 min ago`, `5 h ago`, `2 days ago`.
pub fn ago(ts: f64, now: f64) -> String {
    let d = (now - ts).max(0.0);
    if d < 60.0 {
        format!("{} s ago", d.floor())
    } else if d < 3600.0 {
        format!("{} min ago", (d / 60.0).floor())
    } else if d < 86400.0 {
        format!("{} h ago", (d / 3600.0).floor())
    } else {
        let days = (d / 86400.0).floor();
        format!("{days} day{} ago", if days == 1.0 { "" } else { "s" })
    }
}

/// `987`, `12.3k`, `4.5M`.
pub fn count(n: u64) -> String {
    if n < 10_000 {
        n.to_string()
    } else if n < 1_000_000 {
        format!("{:.1}k", n as f64 / 1000.0)
    } else {
        format!("{:.1}M", n as f64 / 1e6)
    }
}

/// `1 event`, `3 events`, `12.3k users`: a count and its noun, plural unless it is one.
pub fn plural(n: u64, noun: &str) -> String {
    format!("{} {}", count(n), self::noun(n, noun))
}

/// `event` for one, `events` for any other number.
pub fn noun(n: u64, noun: &str) -> String {
    if n == 1 { noun.to_string() } else { format!("{noun}s") }
}

/// A length of time: `19 s`, `1.5 min`, `30 min`, `3.5 h`, `2 days`.
pub fn span(secs: f64) -> String {
    let one = |v: f64| {
        let r = if v >= 10.0 { format!("{v:.0}") } else { format!("{v:.1}") };
        r.strip_suffix(".0").map(str::to_string).unwrap_or(r)
    };
    if secs < 60.0 {
        format!("{} s", secs.round())
    } else if secs < 3600.0 {
        format!("{} min", one(secs / 60.0))
    } else if secs < 86400.0 {
        format!("{} h", one(secs / 3600.0))
    } else {
        let days = one(secs / 86400.0);
        format!("{days} day{}", if days == "1" { "" } else { "s" })
    }
}

/// `512 bytes`, `12.3 kB`, `4.5 MB`, `1.2 GB` (powers of 1000, as disks are sold).
pub fn bytes(n: u64) -> String {
    let n = n as f64;
    if n < 1000.0 {
        format!("{n} bytes")
    } else if n < 1e6 {
        format!("{:.1} kB", n / 1e3)
    } else if n < 1e9 {
        format!("{:.1} MB", n / 1e6)
    } else {
        format!("{:.1} GB", n / 1e9)
    }
}

/// `0.4 ms`, `36 ms`, `1.25 s`.
pub fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.1} ms")
    } else if v < 1000.0 {
        format!("{v:.0} ms")
    } else {
        format!("{:.2} s", v / 1000.0)
    }
}

/// Percent-encodes a query-string component.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `?k=v&k2=v2` from pairs, leaving out empty values.
pub fn query_string(pairs: &[(String, String)]) -> String {
    let parts: Vec<String> =
        pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v))).collect();
    if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(ago(100.0, 3700.0), "1 h ago");
        assert_eq!(count(12_345), "12.3k");
        assert_eq!(ms(36.2), "36 ms");
        assert_eq!(url_encode("a b&c=<"), "a+b%26c%3D%3C");
        assert_eq!(query_string(&[("sort".into(), "freq".into()), ("q".into(), String::new())]), "?sort=freq");
        assert_eq!(utc(0.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(plural(1, "user"), "1 user");
        assert_eq!(plural(0, "event"), "0 events");
        assert_eq!(plural(12_345, "event"), "12.3k events");
        assert_eq!(span(18.75), "19 s");
        assert_eq!(span(90.0), "1.5 min");
        assert_eq!(span(1800.0), "30 min");
        assert_eq!(span(12_600.0), "3.5 h");
        assert_eq!(span(86_400.0), "1 day");
        assert_eq!(span(2.0 * 86_400.0), "2 days");
    }
}
