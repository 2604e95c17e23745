//! A byte-level repair pass over event JSON that `serde_json` refused: for what Python clients
//! emit but JSON forbids (`NaN`, `Infinity`, lone UTF-16 surrogate escapes) and for bodies that
//! are not valid UTF-8.
//!
//! It tracks string literals, so brackets and tokens inside strings are left alone.

/// Rewrites `NaN`, `Infinity` and `-Infinity` outside strings to `null`, lone surrogate escapes
/// (`"\ud83d"` without its pair) to `\ufffd`, and invalid UTF-8 to U+FFFD. `None` when there was
/// nothing to repair, so the caller can report the original parse error.
pub fn repair(bytes: &[u8]) -> Option<Vec<u8>> {
    let lossy;
    let (src, mut changed) = match std::str::from_utf8(bytes) {
        Ok(_) => (bytes, false),
        Err(_) => {
            lossy = String::from_utf8_lossy(bytes).into_owned();
            (lossy.as_bytes(), true)
        }
    };
    let mut out = Vec::with_capacity(src.len());
    let mut in_string = false;
    let mut i = 0;
    while let Some(&b) = src.get(i) {
        if in_string {
            match b {
                b'"' => in_string = false,
                b'\\' if src.get(i + 1) == Some(&b'u') => {
                    let step = surrogate_escape(src, i);
                    if step == 0 {
                        out.extend_from_slice(br"\ufffd");
                        changed = true;
                        i += 6;
                    } else {
                        out.extend_from_slice(src.get(i..i + step).unwrap_or_default());
                        i += step;
                    }
                    continue;
                }
                b'\\' => {
                    out.extend_from_slice(src.get(i..i + 2).unwrap_or(b"\\"));
                    i += 2;
                    continue;
                }
                _ => {}
            }
            out.push(b);
            i += 1;
            continue;
        }
        let rest = src.get(i..).unwrap_or_default();
        let token = [&b"NaN"[..], b"Infinity", b"-Infinity"]
            .into_iter()
            .find(|t| rest.starts_with(t));
        if let Some(token) = token {
            out.extend_from_slice(b"null");
            i += token.len();
            changed = true;
            continue;
        }
        if b == b'"' {
            in_string = true;
        }
        out.push(b);
        i += 1;
    }
    changed.then_some(out)
}

/// For the `\u` escape at `i`: how many bytes to copy unchanged (6, or 12 for a valid surrogate
/// pair, or 2 for a malformed escape that serde_json will report), or 0 when it is a lone
/// surrogate to replace.
fn surrogate_escape(src: &[u8], i: usize) -> usize {
    let unit = |at: usize| -> Option<u16> {
        if src.get(at..at + 2)? != br"\u" {
            return None;
        }
        let hex = std::str::from_utf8(src.get(at + 2..at + 6)?).ok()?;
        u16::from_str_radix(hex, 16).ok()
    };
    match unit(i) {
        None => 2,
        Some(0xD800..=0xDBFF) => match unit(i + 6) {
            Some(0xDC00..=0xDFFF) => 12,
            _ => 0,
        },
        Some(0xDC00..=0xDFFF) => 0,
        Some(_) => 6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repaired(s: &str) -> Option<String> {
        repair(s.as_bytes()).map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn non_finite_numbers_become_null() {
        assert_eq!(
            repaired(r#"{"a":NaN,"b":[Infinity,-Infinity],"c":"NaN Infinity"}"#).as_deref(),
            Some(r#"{"a":null,"b":[null,null],"c":"NaN Infinity"}"#)
        );
        assert_eq!(repaired(r#"{"a":1.5,"b":"\"NaN"}"#), None);
    }

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        assert_eq!(
            repaired(r#"{"a":"x\ud83dy","b":"\udc80","ok":"\ud83d\ude80\u00e9\\u"}"#).as_deref(),
            Some(r#"{"a":"x\ufffdy","b":"\ufffd","ok":"\ud83d\ude80\u00e9\\u"}"#)
        );
        // Truncated escapes are left for serde_json to report.
        assert_eq!(repaired(r#"{"a":"\u12"#), None);
        assert_eq!(repaired(r#"{"a":"\"#), None);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let fixed = repair(b"{\"a\":\"caf\xe9\"}").unwrap();
        assert_eq!(String::from_utf8(fixed).unwrap(), "{\"a\":\"caf\u{fffd}\"}");
    }
}
