//! Message normalisation for grouping: the first two non-empty lines, with the values that
//! vary between occurrences (emails, URLs, IPs, UUIDs, hex, dates, quoted strings, numbers)
//! replaced by placeholders, so that `Order 42 failed` and `Order 43 failed` group together.
//!
//! A hand-written scanner, left to right. A value is only recognised where a word starts
//! (after a character that is not a letter, digit or `_`), and must end where a word ends:
//! `order42` and `v2` stay as written. Placeholders count as words on both sides, which keeps
//! the function a fixpoint: `normalize(normalize(x)) == normalize(x)`.

/// The placeholders, as they appear in the output.
pub const PLACEHOLDERS: &[&str] = &[
    "<email>", "<url>", "<ip>", "<uuid>", "<hex>", "<date>", "<quoted>", "<float>", "<int>",
];

/// Normalises a message for grouping: keeps the first two non-empty lines (joined by `\n`),
/// folds whitespace to single spaces and replaces variable values with [`PLACEHOLDERS`].
///
/// `User bob@example.com failed to pay 12.50 at 2024-05-01T10:00:00Z` becomes
/// `User <email> failed to pay <float> at <date>`.
pub fn normalize(msg: &str) -> String {
    let mut lines = Vec::with_capacity(2);
    for line in msg.lines() {
        let folded = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if !folded.is_empty() {
            lines.push(Line::new(&folded).normalize());
            if lines.len() == 2 {
                break;
            }
        }
    }
    lines.join("\n")
}

/// Units that may follow a number directly: `30s`, `250ms`, `2nd`, `512MB`. The number is
/// replaced; the unit stays.
#[rustfmt::skip]
const UNITS: &[&str] = &[
    "b", "d", "day", "days", "gb", "gib", "h", "hour", "hours", "hr", "hrs", "kb", "kib",
    "m", "mb", "mib", "min", "mins", "minute", "minutes", "ms", "nd", "ns", "px", "rd", "s",
    "sec", "second", "seconds", "secs", "st", "tb", "th", "us", "x", "µs",
];

/// Longest local part of an email address (RFC 5321).
const MAX_EMAIL_LOCAL: usize = 64;
const MAX_EMAIL_DOMAIN: usize = 255;
const MAX_URL_SCHEME: usize = 32;

/// Quote pairs: opening, closing.
const QUOTES: [(char, char); 4] = [('\'', '\''), ('"', '"'), ('‘', '’'), ('“', '”')];

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

struct Line {
    cs: Vec<char>,
    /// Per quote pair, for each position `i`, the first valid closing quote at or after `i`
    /// (or `usize::MAX`); computed only for pairs the line contains.
    closers: [Option<Vec<usize>>; 4],
}

impl Line {
    fn new(line: &str) -> Self {
        let cs: Vec<char> = line.chars().collect();
        let mut line = Line {
            cs,
            closers: [None, None, None, None],
        };
        for (k, &(open, close)) in QUOTES.iter().enumerate() {
            if line.cs.contains(&open) {
                let mut next = vec![usize::MAX; line.cs.len() + 1];
                for i in (0..line.cs.len()).rev() {
                    let valid = line.cs[i] == close && line.end_ok(i + 1);
                    next[i] = if valid { i } else { next[i + 1] };
                }
                line.closers[k] = Some(next);
            }
        }
        line
    }

    fn normalize(&self) -> String {
        let mut out = String::with_capacity(self.cs.len());
        let mut i = 0;
        let mut prev_word = false;
        while i < self.cs.len() {
            if let Some(p) = self.placeholder_at(i) {
                out.push_str(p);
                i += p.len();
                prev_word = true;
                continue;
            }
            if !prev_word && let Some((len, p)) = self.value_at(i) {
                out.push_str(p);
                i += len;
                prev_word = true;
                continue;
            }
            out.push(self.cs[i]);
            prev_word = is_word(self.cs[i]);
            i += 1;
        }
        out
    }

    fn at(&self, i: usize) -> Option<char> {
        self.cs.get(i).copied()
    }

    fn digit(&self, i: usize) -> bool {
        self.at(i).is_some_and(|c| c.is_ascii_digit())
    }

    fn digits(&self, i: usize, count: usize) -> bool {
        (i..i + count).all(|j| self.digit(j))
    }

    fn hex(&self, i: usize) -> bool {
        self.at(i).is_some_and(|c| c.is_ascii_hexdigit())
    }

    /// A placeholder literally at `i` (from an earlier normalisation, or sent as such).
    fn placeholder_at(&self, i: usize) -> Option<&'static str> {
        if self.at(i) != Some('<') {
            return None;
        }
        PLACEHOLDERS.iter().copied().find(|p| {
            p.chars()
                .enumerate()
                .all(|(k, c)| self.at(i + k) == Some(c))
        })
    }

    /// Whether a value may end before position `j`: the end of the line, or a character that
    /// is neither part of a word nor the start of a placeholder.
    fn end_ok(&self, j: usize) -> bool {
        match self.at(j) {
            None => true,
            Some(c) => !is_word(c) && self.placeholder_at(j).is_none(),
        }
    }

    /// The value starting at `i` (a word start), as its length in chars and placeholder.
    fn value_at(&self, i: usize) -> Option<(usize, &'static str)> {
        let c = self.cs[i];
        if let Some(k) = QUOTES.iter().position(|&(open, _)| open == c) {
            return self.quoted(i, k).map(|len| (len, "<quoted>"));
        }
        self.url(i)
            .map(|len| (len, "<url>"))
            .or_else(|| self.email(i).map(|len| (len, "<email>")))
            .or_else(|| self.uuid(i).map(|len| (len, "<uuid>")))
            .or_else(|| self.date(i).map(|len| (len, "<date>")))
            .or_else(|| self.ip(i).map(|len| (len, "<ip>")))
            .or_else(|| self.hex_value(i).map(|len| (len, "<hex>")))
            .or_else(|| self.number(i))
    }

    fn quoted(&self, i: usize, pair: usize) -> Option<usize> {
        let next = self.closers[pair].as_ref()?;
        let close = *next.get(i + 1)?;
        (close != usize::MAX).then(|| close + 1 - i)
    }

    /// `scheme://…` up to whitespace, without trailing punctuation.
    fn url(&self, i: usize) -> Option<usize> {
        if !self.at(i)?.is_ascii_alphabetic() {
            return None;
        }
        let mut j = i;
        while self
            .at(j)
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
        {
            j += 1;
            if j - i > MAX_URL_SCHEME {
                return None;
            }
        }
        if !(self.at(j) == Some(':') && self.at(j + 1) == Some('/') && self.at(j + 2) == Some('/'))
        {
            return None;
        }
        let rest = j + 3;
        let mut k = rest;
        while self.at(k).is_some_and(|c| !c.is_whitespace()) {
            if self.placeholder_at(k).is_some() {
                // Part of it was replaced already: it was no URL then, and is none now.
                return None;
            }
            k += 1;
        }
        while k > rest
            && matches!(
                self.cs[k - 1],
                '.' | ',' | ';' | ':' | '!' | '?' | ')' | ']' | '}' | '\'' | '"' | '>'
            )
        {
            k -= 1;
        }
        (k > rest && self.end_ok(k)).then_some(k - i)
    }

    fn email(&self, i: usize) -> Option<usize> {
        let local = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-');
        if self.at(i) == Some('.') {
            return None;
        }
        let mut j = i;
        while self.at(j).is_some_and(local) {
            j += 1;
            if j - i > MAX_EMAIL_LOCAL {
                return None;
            }
        }
        if j == i || self.at(j) != Some('@') {
            return None;
        }
        let label = |c: char| c.is_ascii_alphanumeric() || c == '-';
        let mut k = j + 1;
        let mut labels = 0;
        let mut last_start;
        loop {
            let start = k;
            while self.at(k).is_some_and(label) {
                k += 1;
            }
            if k == start || k - j > MAX_EMAIL_DOMAIN {
                return None;
            }
            labels += 1;
            last_start = start;
            if self.at(k) == Some('.') && self.at(k + 1).is_some_and(|c| c.is_ascii_alphanumeric())
            {
                k += 1;
            } else {
                break;
            }
        }
        let tld_ok = k - last_start >= 2
            && self.cs[last_start..k]
                .iter()
                .all(|c| c.is_ascii_alphabetic());
        // A domain cut short by a placeholder (`a@b.com.<ip>`) would not have been an email
        // before that placeholder replaced `1.2.3.4`: refuse it, to stay a fixpoint.
        let cut = self.at(k) == Some('.') && self.placeholder_at(k + 1).is_some();
        (labels >= 2 && tld_ok && !cut && self.end_ok(k)).then_some(k - i)
    }

    /// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
    fn uuid(&self, i: usize) -> Option<usize> {
        let ok = (0..36).all(|k| match k {
            8 | 13 | 18 | 23 => self.at(i + k) == Some('-'),
            _ => self.hex(i + k),
        });
        (ok && self.end_ok(i + 36)).then_some(36)
    }

    /// ISO dates with an optional time and zone (`2024-05-01`, `2024/05/01`,
    /// `2024-05-01T10:00:00.123Z`, `2024-05-01 10:00:00,123+02:00`), or a time of day with
    /// seconds (`10:00:00`, `9:05:03.5`).
    fn date(&self, i: usize) -> Option<usize> {
        let sep = self.at(i + 4);
        let is_date = self.digits(i, 4)
            && matches!(sep, Some('-' | '/'))
            && self.digits(i + 5, 2)
            && self.at(i + 7) == sep
            && self.digits(i + 8, 2);
        let end = if is_date {
            let mut j = i + 10;
            if matches!(self.at(j), Some('T' | 't' | ' '))
                && let Some(t) = self.time(j + 1, false)
            {
                j = self.zone(t);
            }
            j
        } else {
            self.zone(self.time(i, true)?)
        };
        self.end_ok(end).then_some(end - i)
    }

    /// `HH:MM[:SS[.fff]]` at `i`; seconds required when `standalone`. Returns the end.
    fn time(&self, i: usize, standalone: bool) -> Option<usize> {
        let hour = if self.digits(i, 2) {
            2
        } else if standalone && self.digit(i) {
            1
        } else {
            return None;
        };
        let mut j = i + hour;
        if !(self.at(j) == Some(':') && self.digits(j + 1, 2)) {
            return None;
        }
        j += 3;
        if self.at(j) == Some(':') && self.digits(j + 1, 2) {
            j += 3;
            if matches!(self.at(j), Some('.' | ',')) && self.digit(j + 1) {
                j += 1;
                while self.digit(j) {
                    j += 1;
                }
            }
        } else if standalone {
            return None;
        }
        Some(j)
    }

    /// An optional zone after a time: `Z`, `+02:00`, `-0500`. Returns the end.
    fn zone(&self, j: usize) -> usize {
        match self.at(j) {
            Some('Z' | 'z') => j + 1,
            Some('+' | '-') if self.digits(j + 1, 2) => {
                if self.at(j + 3) == Some(':') && self.digits(j + 4, 2) {
                    j + 6
                } else if self.digits(j + 3, 2) {
                    j + 5
                } else {
                    j
                }
            }
            _ => j,
        }
    }

    fn ip(&self, i: usize) -> Option<usize> {
        self.ipv4(i)
            .filter(|&end| self.end_ok(end))
            .or_else(|| self.ipv6(i))
            .map(|end| end - i)
    }

    /// Four dotted octets at `i`; returns the end.
    fn ipv4(&self, i: usize) -> Option<usize> {
        let mut j = i;
        for octet in 0..4 {
            if octet > 0 {
                if self.at(j) != Some('.') {
                    return None;
                }
                j += 1;
            }
            let start = j;
            let mut value = 0u32;
            while self.digit(j) && j - start < 3 {
                value = value * 10 + self.cs[j].to_digit(10).unwrap_or(0);
                j += 1;
            }
            if j == start || value > 255 || self.digit(j) {
                return None;
            }
        }
        Some(j)
    }

    /// Colon-separated hex groups, `::` at most once, at least one digit (so that `add::bad`
    /// is not an address); an IPv4 tail (`::ffff:10.0.0.1`) is allowed. Returns the end.
    fn ipv6(&self, i: usize) -> Option<usize> {
        let mut j = i;
        let mut groups = 0;
        let mut double = false;
        let mut digit = false;
        if self.at(j) == Some(':') && self.at(j + 1) == Some(':') {
            double = true;
            j += 2;
        }
        loop {
            let start = j;
            while self.hex(j) && j - start < 4 {
                j += 1;
            }
            if j == start {
                break;
            }
            if self.hex(j) {
                return None;
            }
            if self.at(j) == Some('.') {
                // An IPv4 tail replaces the last two groups.
                let end = self.ipv4(start)?;
                groups += 2;
                digit = true;
                j = end;
                break;
            }
            groups += 1;
            if groups > 8 {
                return None;
            }
            digit |= self.cs[start..j].iter().any(|c| c.is_ascii_digit());
            if self.at(j) == Some(':') && self.at(j + 1) == Some(':') && !double {
                double = true;
                j += 2;
            } else if self.at(j) == Some(':') && self.hex(j + 1) {
                j += 1;
            } else {
                break;
            }
        }
        let shape = if double {
            (1..=7).contains(&groups)
        } else {
            groups == 8
        };
        // Refuse an address followed by `:` or `.` (`fe80::1:<hex>` was no address before).
        let clean_end = !matches!(self.at(j), Some(':' | '.'));
        (shape && digit && clean_end && self.end_ok(j)).then_some(j)
    }

    /// `0x1f`, or a run of 8+ hex digits with both digits and letters (sha1, md5, ids).
    fn hex_value(&self, i: usize) -> Option<usize> {
        if self.at(i) == Some('0') && matches!(self.at(i + 1), Some('x' | 'X')) && self.hex(i + 2) {
            let mut j = i + 2;
            while self.hex(j) {
                j += 1;
            }
            return self.end_ok(j).then_some(j - i);
        }
        let mut j = i;
        let (mut digits, mut letters) = (false, false);
        while let Some(c) = self.at(j).filter(char::is_ascii_hexdigit) {
            digits |= c.is_ascii_digit();
            letters |= !c.is_ascii_digit();
            j += 1;
        }
        (j - i >= 8 && digits && letters && self.end_ok(j)).then_some(j - i)
    }

    /// A signed or unsigned integer or decimal, standing alone or followed by a unit.
    fn number(&self, i: usize) -> Option<(usize, &'static str)> {
        let mut j = i;
        if matches!(self.at(j), Some('-' | '+')) {
            j += 1;
        }
        let digits_start = j;
        while self.digit(j) {
            j += 1;
        }
        if j == digits_start {
            return None;
        }
        let int_end = j;
        let mut float_end = None;
        if self.at(j) == Some('.') && self.digit(j + 1) {
            j += 1;
            while self.digit(j) {
                j += 1;
            }
            float_end = Some(j);
        }
        let e = float_end.unwrap_or(int_end);
        if matches!(self.at(e), Some('e' | 'E')) {
            let k = if matches!(self.at(e + 1), Some('+' | '-')) {
                e + 2
            } else {
                e + 1
            };
            if self.digit(k) {
                let mut k = k;
                while self.digit(k) {
                    k += 1;
                }
                float_end = Some(k);
            }
        }
        if let Some(end) = float_end.filter(|&end| self.number_end_ok(end)) {
            return Some((end - i, "<float>"));
        }
        self.number_end_ok(int_end)
            .then_some((int_end - i, "<int>"))
    }

    fn number_end_ok(&self, j: usize) -> bool {
        if self.end_ok(j) {
            return true;
        }
        let mut k = j;
        while self.at(k).is_some_and(char::is_alphabetic) && k - j < 8 {
            k += 1;
        }
        let unit: String = self.cs[j..k].iter().collect::<String>().to_lowercase();
        k > j && self.end_ok(k) && UNITS.contains(&unit.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        let got = normalize(input);
        assert_eq!(got, expected, "normalize({input:?})");
        assert_eq!(normalize(&got), got, "not idempotent for {input:?}");
    }

    #[test]
    fn lines_and_whitespace() {
        check(
            "  first   line \n\n \t \nsecond\r\nthird",
            "first line\nsecond",
        );
        check("", "");
        check(" \n \n", "");
    }

    #[test]
    fn numbers() {
        check(
            "Order 42 failed after 3 retries",
            "Order <int> failed after <int> retries",
        );
        check("order42 v2 x_1 1st 2nd", "order42 v2 x_1 <int>st <int>nd");
        check(
            "took 250ms and 1.5s, 30 s, 512MB",
            "took <int>ms and <float>s, <int> s, <int>MB",
        );
        check(
            "balance -12.50 +3 x-5 3-5",
            "balance <float> <int> x-<int> <int>-<int>",
        );
        check(
            "version 1.2.3, 1e10, 2.5E-3",
            "version <float>.<int>, <float>, <float>",
        );
        check("ticket #123 (42%)", "ticket #<int> (<int>%)");
        check("file.py:42 in foo", "file.py:<int> in foo");
        check("1.5abc 42abc", "<int>.5abc 42abc");
    }

    #[test]
    fn identifiers() {
        check(
            "user 550e8400-e29b-41d4-a716-446655440000 not found",
            "user <uuid> not found",
        );
        check("object at 0x7f3a2b1c00 freed", "object at <hex> freed");
        check(
            "commit 3f786850e387550fdab836ed7e6dc881de23001b",
            "commit <hex>",
        );
        check("md5 d41d8cd98f00b204e9800998ecf8427e", "md5 <hex>");
        check("deadbeef defaced 12345678", "deadbeef defaced <int>");
    }

    #[test]
    fn network() {
        check(
            "Mail to bob.smith+x@mail.example.com bounced",
            "Mail to <email> bounced",
        );
        check(
            "GET https://example.com/a?b=1&c=2, then (http://x.io/y).",
            "GET <url>, then (<url>).",
        );
        check(
            "connect to 10.0.0.12:5432 refused",
            "connect to <ip>:<int> refused",
        );
        check(
            "from 2001:db8::8a2e:370:7334 and ::1 and ::ffff:10.0.0.1",
            "from <ip> and <ip> and <ip>",
        );
        check(
            "std::vector and add::bad and 999.1.1.1",
            "std::vector and add::bad and <float>.<float>",
        );
    }

    #[test]
    fn dates() {
        check("at 2024-05-01T10:00:00.123Z done", "at <date> done");
        check("at 2024-05-01 10:00:00,123+02:00 done", "at <date> done");
        check("on 2024/05/01 at 9:05:03", "on <date> at <date>");
        check("meet 10:30 sharp", "meet <int>:<int> sharp");
    }

    #[test]
    fn quotes() {
        check("KeyError: 'coupon'", "KeyError: <quoted>");
        check(
            r#"column "email" of relation "users" does not exist"#,
            "column <quoted> of relation <quoted> does not exist",
        );
        check("don't touch it's fine", "don't touch it's fine");
        check("name='it's' ok", "name=<quoted> ok");
        check("an 'unterminated quote", "an 'unterminated quote");
        check("he said “hi 42” ", "he said <quoted>");
    }

    #[test]
    fn regressions() {
        check("http://0x0x10:20:30<int>", "http://0x0x10:<int>:30<int>");
        check("<int>http://http://''", "<int>http://http://<quoted>");
    }

    /// Inputs that would take quadratic time in a naive scanner finish at once.
    #[test]
    fn long_inputs_are_linear() {
        for unit in [
            "1:",
            "a.",
            "1.",
            "'a ",
            "a@",
            "http://' ",
            "0x",
            "-",
            "“",
            "::1 ",
            "a-",
        ] {
            let long = unit.repeat(20_000);
            assert_eq!(normalize(&normalize(&long)), normalize(&long));
        }
    }

    #[test]
    fn placeholders_are_fixpoints() {
        for p in PLACEHOLDERS {
            check(p, p);
            check(&format!("a {p}x {p}{p}"), &format!("a {p}x {p}{p}"));
        }
    }
}
