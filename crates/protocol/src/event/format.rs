//! Python-style `%` formatting of a log template with its params, for clients that send the
//! template and the params but no `formatted` text (raven: `Order %s failed for %s` with
//! `["'A-17'", "'alice'"]` reads "Order 'A-17' failed for 'alice'").

use serde_json::Value;

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Fills `%s`-style placeholders (any conversion letter, with flags and width ignored) from a
/// list, or `%(name)s` from an object. `%%` is a literal `%`. Returns `None` when the params
/// don't fit the template (too few, wrong shape), so the caller can keep the template.
pub fn format_params(template: &str, params: &Value) -> Option<String> {
    let list: Vec<&Value> = match params {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => Vec::new(),
        Value::Null => return None,
        other => vec![other],
    };
    let mut out = String::with_capacity(template.len() + 16);
    let mut next = 0;
    let mut chars = template.char_indices().peekable();
    let mut used_any = false;
    while let Some((_, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.peek().map(|&(_, c)| c) {
            Some('%') => {
                chars.next();
                out.push('%');
            }
            Some('(') => {
                chars.next();
                let mut name = String::new();
                for (_, c) in chars.by_ref() {
                    if c == ')' {
                        break;
                    }
                    name.push(c);
                }
                skip_spec(&mut chars)?;
                out.push_str(&show(params.as_object()?.get(&name)?));
                used_any = true;
            }
            Some(_) => {
                skip_spec(&mut chars)?;
                out.push_str(&show(list.get(next)?));
                next += 1;
                used_any = true;
            }
            None => out.push('%'),
        }
    }
    used_any.then_some(out)
}

/// Skips flags, width and precision, then requires a conversion letter.
fn skip_spec(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) -> Option<()> {
    while let Some(&(_, c)) = chars.peek() {
        if c.is_ascii_digit() || "-+ #.".contains(c) {
            chars.next();
        } else {
            break;
        }
    }
    match chars.next() {
        Some((_, c)) if "sdirfeEgGxXoca".contains(c) => Some(()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::format_params;
    use serde_json::json;

    #[test]
    fn formats() {
        let check = |t: &str, p, want: Option<&str>| assert_eq!(format_params(t, &p).as_deref(), want, "{t}");
        check("Order %s failed for %s", json!(["'A-17'", "'alice'"]), Some("Order 'A-17' failed for 'alice'"));
        check("%d%% done, %5.1f s", json!([50, 1.25]), Some("50% done, 1.25 s"));
        check("user %(name)s id %(id)d", json!({"name": "bob", "id": 7}), Some("user bob id 7"));
        check("too few %s %s", json!(["a"]), None);
        check("no placeholders", json!(["a"]), None);
        check("trailing %", json!(["a"]), None);
        check("bad %q", json!(["a"]), None);
    }
}
