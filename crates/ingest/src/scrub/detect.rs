//! Whether an event holds anything to scrub, in one pass over its JSON that allocates nothing
//! for what it reads: the same decisions as the scrubbing walk (names, then the text of every
//! string), so that only an event with something to scrub is parsed whole and written again.
//! It may say yes where the walk then changes nothing (a list whose first string looks like a
//! name), never the other way round.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{FILTERED, Scrubber};

/// `Err` when the bytes are not JSON as `serde_json` reads it (the caller then takes the
/// full path, which repairs what the normaliser repairs).
pub fn holds_secrets(scrubber: &Scrubber, raw: &[u8]) -> Result<bool, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(raw);
    let found = Detect { s: scrubber, root: true }.deserialize(&mut de)?;
    de.end()?;
    Ok(found)
}

#[derive(Clone, Copy)]
struct Detect<'s> {
    s: &'s Scrubber,
    root: bool,
}

impl<'de> DeserializeSeed<'de> for Detect<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Detect<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(self.s.text(v, &mut Vec::new()).is_some())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let inner = Detect { root: false, ..self };
        let mut found = false;
        while let Some(f) = if found { seq.next_element::<IgnoredAny>()?.map(|_| true) } else { seq.next_element_seed(Element(inner))? } {
            found |= f;
        }
        Ok(found)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(name) = map.next_key_seed(Name { s: self.s, root: self.root })? {
            let f = match name {
                _ if found => map.next_value::<IgnoredAny>().map(|_| true)?,
                NameKind::Skip => map.next_value::<IgnoredAny>().map(|_| false)?,
                NameKind::Sensitive => !map.next_value_seed(NothingLeft)?,
                NameKind::Plain => map.next_value_seed(Detect { root: false, ..self })?,
            };
            found |= f;
        }
        Ok(found)
    }
}

/// An element of a list: itself a list whose first element is a string is read as a pair,
/// the string naming what follows it (headers and tags sent as pairs).
struct Element<'s>(Detect<'s>);

impl<'de> DeserializeSeed<'de> for Element<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Element<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<bool, E> {
        self.0.visit_str(v)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        self.0.visit_map(map)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let d = self.0;
        let mut found = false;
        let next = match seq.next_element_seed(FirstSeed(d))? {
            None => return Ok(false),
            Some(First::Name(NameKind::Sensitive)) => Some(NameKind::Sensitive),
            Some(First::Name(_)) => None,
            Some(First::Other(f)) => {
                found = f;
                None
            }
        };
        if next.is_some()
            && let Some(nothing) = seq.next_element_seed(NothingLeft)?
        {
            found |= !nothing;
        }
        while let Some(f) = if found { seq.next_element::<IgnoredAny>()?.map(|_| true) } else { seq.next_element_seed(Element(d))? } {
            found |= f;
        }
        Ok(found)
    }
}

/// The first element of a list in a list: a name, or anything else and whether it holds a
/// secret.
enum First {
    Name(NameKind),
    Other(bool),
}

struct FirstSeed<'s>(Detect<'s>);

impl<'de> DeserializeSeed<'de> for FirstSeed<'_> {
    type Value = First;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<First, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FirstSeed<'_> {
    type Value = First;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<First, E> {
        Ok(First::Other(false))
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<First, E> {
        Ok(First::Other(false))
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<First, E> {
        Ok(First::Other(false))
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<First, E> {
        Ok(First::Other(false))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<First, E> {
        Ok(First::Other(false))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<First, E> {
        // Its own text may hold a secret too.
        if self.0.s.text(v, &mut Vec::new()).is_some() {
            return Ok(First::Other(true));
        }
        Ok(First::Name(kind(self.0.s, v, false)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<First, A::Error> {
        Element(self.0).visit_seq(seq).map(First::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<First, A::Error> {
        self.0.visit_map(map).map(First::Other)
    }
}

#[derive(Clone, Copy)]
enum NameKind {
    /// A safe field, or the SDK's own `_meta`: not looked into.
    Skip,
    Sensitive,
    Plain,
}

fn kind(s: &Scrubber, name: &str, root: bool) -> NameKind {
    if (root && name == "_meta") || s.is_safe(name) {
        NameKind::Skip
    } else if s.is_sensitive(name) {
        NameKind::Sensitive
    } else {
        NameKind::Plain
    }
}

struct Name<'s> {
    s: &'s Scrubber,
    root: bool,
}

impl<'de> DeserializeSeed<'de> for Name<'_> {
    type Value = NameKind;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<NameKind, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Name<'_> {
    type Value = NameKind;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<NameKind, E> {
        Ok(kind(self.s, v, self.root))
    }
}

/// Whether a sensitive value holds nothing to hide (as `super::nothing_left`).
struct NothingLeft;

impl<'de> DeserializeSeed<'de> for NothingLeft {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NothingLeft {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(true)
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<bool, E> {
        Ok(true)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v.is_empty() || v == FILTERED)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let mut all = true;
        while let Some(n) = seq.next_element_seed(NothingLeft)? {
            all &= n;
        }
        Ok(all)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut all = true;
        while map.next_key::<IgnoredAny>()?.is_some() {
            all &= map.next_value_seed(NothingLeft)?;
        }
        Ok(all)
    }
}
