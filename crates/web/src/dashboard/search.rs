//! The search box's language, Sentry's where it matters: `key:value` terms, negation
//! (`!key:value`), `has:key` / `!has:key`, wildcards (`server:web-*`), lists
//! (`level:[error,fatal]`), comparisons (`times_seen:>100`, `users:>=10`), relative times
//! (`age:-24h`, `last_seen:+7d`) and dates (`first_seen:>2026-01-31`), quoted values
//! (`message:"out of stock"`) and free text over the title and culprit.
//!
//! Two steps: [`parse`] reads the text into [`Term`]s without knowing anything of the store (so
//! it is tested on its own, and never panics); [`Lowering::apply`] turns a term into conditions
//! of the [`StreamQuery`], resolving `assigned:me`, `#team` and member emails through a
//! [`SearchContext`]. Either step says why a term can't be used, in words for the person
//! who typed it.

use protocol::Level;
use store::{Assignee, AssigneeCondition, Cmp, Comparison, GroupField, GroupStatus, StatusFilter, StreamQuery, TagCondition, TeamId, UserId};

/// Most values in one list (`level:[a,b,…]`).
pub const MAX_LIST_VALUES: usize = 20;

/// One term of the search box.
#[derive(Clone, Debug, PartialEq)]
pub struct Term {
    /// Written with a leading `!`.
    pub negated: bool,
    /// `None`: free text.
    pub key: Option<String>,
    pub value: TermValue,
}

/// What a term's value is.
#[derive(Clone, Debug, PartialEq)]
pub enum TermValue {
    /// One value (for free text: the word or the quoted phrase).
    One(String),
    /// `[a,b,c]`: any of them.
    List(Vec<String>),
    /// `>5`, `<=2026-01-01`: an operator and what follows it.
    Compare(Cmp, String),
}

/// Reads the search box into terms; a term that can't be read gives its reason instead, and the
/// others are still read.
pub fn parse(q: &str) -> Vec<Result<Term, String>> {
    tokens(q).into_iter().map(|t| t.and_then(|t| term(&t))).collect()
}

/// A token: its text with quotes removed, and whether any part of it was quoted.
#[derive(Debug)]
struct Token {
    text: String,
    /// Byte offset in `text` where quoted text starts, if any (what follows a quote is a value,
    /// never syntax: `message:">5"` is not a comparison).
    quoted_from: Option<usize>,
}

/// Splits on whitespace outside quotes and brackets.
fn tokens(q: &str) -> Vec<Result<Token, String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted_from = None;
    let mut quoted = false;
    let mut depth = 0usize;
    let flush = |cur: &mut String, quoted_from: &mut Option<usize>, out: &mut Vec<Result<Token, String>>| {
        if !cur.is_empty() || quoted_from.is_some() {
            out.push(Ok(Token { text: std::mem::take(cur), quoted_from: quoted_from.take() }));
        }
    };
    for c in q.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                if quoted && quoted_from.is_none() {
                    quoted_from = Some(cur.len());
                }
            }
            '[' if !quoted => {
                depth += 1;
                cur.push(c);
            }
            ']' if !quoted => {
                depth = depth.saturating_sub(1);
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted && depth == 0 => flush(&mut cur, &mut quoted_from, &mut out),
            c => cur.push(c),
        }
    }
    if quoted {
        let start = quoted_from.unwrap_or(0);
        let shown: String = cur[start..].chars().take(20).collect();
        out.push(Err(format!("the quote before \"{shown}\" is not closed: add a \" at its end")));
        return out;
    }
    flush(&mut cur, &mut quoted_from, &mut out);
    out
}

fn term(t: &Token) -> Result<Term, String> {
    let raw = t.text.as_str();
    let syntax_end = t.quoted_from.unwrap_or(raw.len());
    let (negated, body, offset) = match raw.strip_prefix('!') {
        Some(rest) if syntax_end > 0 => (true, rest, 1),
        _ => (false, raw, 0),
    };
    // A key is letters, digits and `._-[]` before the first colon outside quotes; a value that
    // starts with `//` is a URL (`http://x`), not a key.
    let colon = body[..syntax_end.saturating_sub(offset).min(body.len())].find(':');
    let pair = colon.filter(|&i| i > 0 && !body[i + 1..].starts_with("//"));
    let Some(i) = pair else {
        if negated && body.is_empty() {
            return Err("a lone \"!\" negates nothing: write it before a term, like !level:info".into());
        }
        if negated {
            return Err(format!("\"!{body}\": only key:value terms can be negated, like !server:web-1"));
        }
        return Ok(Term { negated, key: None, value: TermValue::One(body.to_string()) });
    };
    let key = tag_key(&body[..i]);
    if !key.chars().all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return Err(format!("\"{key}\" can't be a key: use letters, digits, dots, dashes or underscores"));
    }
    let value = &body[i + 1..];
    let value_quoted = t.quoted_from.is_some_and(|q| q <= offset + i + 1);
    if value.is_empty() && t.quoted_from.is_none() {
        return Err(format!("\"{key}:\" has no value: write one after the colon, or put the words in quotes to search for them"));
    }
    if value_quoted {
        return Ok(Term { negated, key: Some(key), value: TermValue::One(value.to_string()) });
    }
    if let Some(inner) = value.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| format!("the list of \"{key}:\" is not closed: end it with ], like {key}:[a,b]"))?;
        let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
        if values.is_empty() {
            return Err(format!("the list of \"{key}:\" is empty: put values in it, like {key}:[a,b]"));
        }
        if values.len() > MAX_LIST_VALUES {
            return Err(format!("the list of \"{key}:\" has {} values; at most {MAX_LIST_VALUES} can be given", values.len()));
        }
        return Ok(Term { negated, key: Some(key), value: TermValue::List(values) });
    }
    for (op, cmp) in [(">=", Cmp::Ge), ("<=", Cmp::Le), (">", Cmp::Gt), ("<", Cmp::Lt), ("=", Cmp::Eq)] {
        if let Some(rest) = value.strip_prefix(op) {
            if rest.is_empty() {
                return Err(format!("\"{key}:{op}\" compares with nothing: put a number or a date after {op}"));
            }
            return Ok(Term { negated, key: Some(key), value: TermValue::Compare(cmp, rest.to_string()) });
        }
    }
    Ok(Term { negated, key: Some(key), value: TermValue::One(value.to_string()) })
}

/// `tags[browser]` and `tags.browser` are the tag `browser`.
fn tag_key(k: &str) -> String {
    if let Some(inner) = k.strip_prefix("tags[").and_then(|r| r.strip_suffix(']')) {
        return inner.to_string();
    }
    k.strip_prefix("tags.").filter(|r| !r.is_empty()).unwrap_or(k).to_string()
}

/// Who "me" is and the organisation's teams and members, for `assigned:`.
#[derive(Clone, Debug, Default)]
pub struct SearchContext {
    pub me: Option<UserId>,
    /// (slug, id) of the organisation's teams.
    pub teams: Vec<(String, TeamId)>,
    /// (email, id) of the organisation's members.
    pub members: Vec<(String, UserId)>,
}

impl SearchContext {
    /// The context of `actor` searching a project of organisation `org`.
    pub fn load(store: &dyn store::Store, org: store::OrgId, actor: &crate::access::Actor) -> store::Result<SearchContext> {
        let me = actor.user.as_ref().map(|u| u.id).or_else(|| actor.token.as_ref().and_then(|t| t.user_id));
        Ok(SearchContext { me, ..SearchContext::of_org(store, org)? })
    }

    /// The teams and members of organisation `org`, for nobody in particular (the command line).
    pub fn of_org(store: &dyn store::Store, org: store::OrgId) -> store::Result<SearchContext> {
        Ok(SearchContext {
            me: None,
            teams: store.teams(org)?.into_iter().map(|t| (t.slug, t.id)).collect(),
            members: store.members(org)?.into_iter().map(|m| (m.user.email, m.user.id)).collect(),
        })
    }

    /// How people read an assignee: the member's email or `#team` ("" when unknown here).
    pub fn name_of(&self, a: Assignee) -> String {
        match a {
            Assignee::User(u) => self.members.iter().find(|(_, id)| *id == u).map(|(e, _)| e.clone()).unwrap_or_default(),
            Assignee::Team(t) => self.teams.iter().find(|(_, id)| *id == t).map(|(s, _)| format!("#{s}")).unwrap_or_default(),
        }
    }

    /// The assignee a search or a form names: `me`, `#team`, a member's email, or a team's slug.
    pub fn assignee(&self, name: &str) -> Result<Assignee, String> {
        let name = name.trim();
        if name == "me" {
            return self.me.map(Assignee::User).ok_or_else(|| "\"me\" needs a signed-in member; name the member by email".to_string());
        }
        if let Some(slug) = name.strip_prefix('#') {
            return self
                .teams
                .iter()
                .find(|(s, _)| s.eq_ignore_ascii_case(slug))
                .map(|(_, t)| Assignee::Team(*t))
                .ok_or_else(|| format!("there is no team #{slug} in this organisation"));
        }
        if let Some((_, u)) = self.members.iter().find(|(e, _)| e.eq_ignore_ascii_case(name)) {
            return Ok(Assignee::User(*u));
        }
        Err(format!("\"{name}\" is not a member of this organisation: use me, #team or a member's email"))
    }
}

/// Applies terms to a query with a context.
pub struct Lowering<'a> {
    pub ctx: &'a SearchContext,
}

/// The key names of the group's numbers.
fn numeric_field(key: &str) -> Option<GroupField> {
    Some(match key {
        "times_seen" | "timesSeen" => GroupField::TimesSeen,
        "users" | "user_count" | "userCount" => GroupField::Users,
        "age" | "first_seen" | "firstSeen" => GroupField::FirstSeen,
        "last_seen" | "lastSeen" => GroupField::LastSeen,
        _ => return None,
    })
}

impl Lowering<'_> {
    /// Narrows `q` by one term, or says why the term can't be used.
    pub fn apply(&self, t: &Term, q: &mut StreamQuery) -> Result<(), String> {
        let Some(key) = t.key.as_deref() else {
            let TermValue::One(w) = &t.value else { return Ok(()) };
            q.text.push(w.clone());
            return Ok(());
        };
        let values = || match &t.value {
            TermValue::One(v) => Ok(vec![v.clone()]),
            TermValue::List(vs) => Ok(vs.clone()),
            TermValue::Compare(..) => Err(format!(
                "\"{key}\" is not a number or a date, so it can't be compared: comparisons work on times_seen, users, age, first_seen and last_seen"
            )),
        };
        match key {
            "is" | "status" => self.is(t.negated, &values()?, q),
            "has" => {
                for k in values()? {
                    q.conditions.push(TagCondition { key: tag_key(&k), values: Vec::new(), negated: t.negated, first_only: false });
                }
                Ok(())
            }
            "assigned" | "assigned_to" | "assignedTo" => {
                let to = values()?.iter().map(|v| self.ctx.assignee(v)).collect::<Result<Vec<_>, _>>()?;
                q.assigned.push(AssigneeCondition { to: Some(to), negated: t.negated });
                Ok(())
            }
            "level" => {
                let vs = values()?;
                let mut levels = Vec::new();
                for v in &vs {
                    let l = Level::parse(v).ok_or_else(|| format!("\"{v}\" is not a level: use fatal, error, warning, info or debug"))?;
                    levels.push(l.as_str().to_string());
                }
                q.conditions.push(TagCondition { negated: t.negated, ..TagCondition::any_of("level", levels) });
                Ok(())
            }
            "interval" => {
                if t.negated {
                    return Err("\"interval\" can't be negated".into());
                }
                let [v] = &values()?[..] else { return Err("give one interval, like interval:24h".into()) };
                super::filters::Filter::apply(&super::filters::IntervalFilter, v, q)
            }
            "message" | "title" => {
                if t.negated {
                    return Err(format!("\"!{key}:\" is not supported: search for words that must appear instead"));
                }
                q.text.extend(values()?);
                Ok(())
            }
            "first_release" | "firstRelease" => {
                q.conditions.push(TagCondition { key: "release".into(), values: values()?, negated: t.negated, first_only: true });
                Ok(())
            }
            "env" | "environment" => {
                q.conditions.push(TagCondition { negated: t.negated, ..TagCondition::any_of("environment", values()?) });
                Ok(())
            }
            k => match numeric_field(k) {
                Some(field) => self.compare(k, field, t, q),
                None => {
                    q.conditions.push(TagCondition { negated: t.negated, ..TagCondition::any_of(k, values()?) });
                    Ok(())
                }
            },
        }
    }

    fn is(&self, negated: bool, values: &[String], q: &mut StreamQuery) -> Result<(), String> {
        for v in values {
            match v.as_str() {
                "assigned" | "unassigned" => {
                    let unassigned = (v == "unassigned") != negated;
                    q.assigned.push(AssigneeCondition { to: None, negated: unassigned });
                }
                "all" if !negated => q.status = StatusFilter::All,
                s => {
                    let status = GroupStatus::parse(s).ok_or_else(|| {
                        format!("\"is:{s}\": use is:unresolved, is:resolved, is:ignored, is:assigned, is:unassigned or is:all")
                    })?;
                    if negated {
                        return Err(format!("\"!is:{s}\" is not supported: pick the status to show, like is:unresolved"));
                    }
                    q.status = StatusFilter::Only(status);
                }
            }
        }
        Ok(())
    }

    fn compare(&self, key: &str, field: GroupField, t: &Term, q: &mut StreamQuery) -> Result<(), String> {
        let (cmp, text) = match &t.value {
            TermValue::Compare(c, v) => (*c, v.as_str()),
            TermValue::One(v) => (Cmp::Eq, v.as_str()),
            TermValue::List(_) => return Err(format!("\"{key}\" takes one value, not a list")),
        };
        let time = matches!(field, GroupField::FirstSeen | GroupField::LastSeen);
        let (cmp, value) = if time {
            match relative(text) {
                // `-24h`: within the last 24 hours; `+24h`: longer ago than that.
                Some(Ok((sign, secs))) if matches!(t.value, TermValue::One(_)) => {
                    (if sign < 0 { Cmp::Ge } else { Cmp::Le }, q.now - secs)
                }
                Some(Err(e)) => return Err(e),
                _ => (cmp, date(text).ok_or_else(|| {
                    format!("\"{key}:{text}\" is not a time: use -24h (within the last 24 hours), +7d (longer ago), or a date like >2026-01-31")
                })?),
            }
        } else {
            let n: f64 = text.parse().ok().filter(|n: &f64| n.is_finite()).ok_or_else(|| {
                format!("\"{key}:{text}\" is not a number: write one, like {key}:>100")
            })?;
            (cmp, n)
        };
        let cmp = if t.negated { negate(cmp).ok_or_else(|| format!("\"!{key}:\" with = is not supported: use < or >"))? } else { cmp };
        q.comparisons.push(Comparison { field, cmp, value });
        Ok(())
    }
}

fn negate(c: Cmp) -> Option<Cmp> {
    Some(match c {
        Cmp::Lt => Cmp::Ge,
        Cmp::Le => Cmp::Gt,
        Cmp::Gt => Cmp::Le,
        Cmp::Ge => Cmp::Lt,
        Cmp::Eq => return None,
    })
}

/// `-24h`, `+7d`: the sign and the seconds; `None` when it is not of that shape.
fn relative(s: &str) -> Option<Result<(i8, f64), String>> {
    let sign = match s.as_bytes().first()? {
        b'-' => -1,
        b'+' => 1,
        _ => return None,
    };
    let rest = &s[1..];
    let unit = rest.chars().last()?;
    let n = &rest[..rest.len() - unit.len_utf8()];
    let secs = match unit {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86400.0,
        'w' => 7.0 * 86400.0,
        _ => return Some(Err(format!("\"{s}\": the unit must be s, m, h, d or w, like -24h"))),
    };
    match n.parse::<u32>() {
        Ok(n) => Some(Ok((sign, f64::from(n) * secs))),
        Err(_) => Some(Err(format!("\"{s}\": write a whole number before the unit, like -24h"))),
    }
}

/// `2026-01-31`, `2026-01-31T12:00:00` or with `Z` (UTC) as unix seconds.
fn date(s: &str) -> Option<f64> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (d, t) = s.split_once('T').unwrap_or((s, "00:00:00"));
    let mut dp = d.splitn(3, '-').map(|p| p.parse::<i32>().ok());
    let (y, m, day) = (dp.next()??, dp.next()??, dp.next()??);
    let mut tp = t.splitn(3, ':').map(|p| p.parse::<u8>().ok());
    let (hh, mm) = (tp.next()??, tp.next().unwrap_or(Some(0))?);
    let ss = tp.next().unwrap_or(Some(0))?;
    let date = time::Date::from_calendar_date(y, time::Month::try_from(u8::try_from(m).ok()?).ok()?, u8::try_from(day).ok()?).ok()?;
    let t = time::Time::from_hms(hh, mm, ss).ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc().unix_timestamp() as f64)
}

#[cfg(test)]
mod tests;
