//! The container several items of one envelope item travel in (`{"items": [...]}`, as `span`
//! and `log` items carry them), read with a budget: the first items are kept, the rest only
//! counted, so a huge list costs no memory.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Reads a container, keeping at most `budget` of its items.
pub(crate) fn read(payload: &[u8], budget: usize) -> Result<Read, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let read = Container { budget }.deserialize(&mut de)?;
    de.end()?;
    Ok(read)
}

/// The container: its `items`, the first `budget` of them kept, the rest only counted.
struct Container {
    budget: usize,
}

/// What a container held: its first items, and how many more were only counted.
#[derive(Default)]
pub(crate) struct Read {
    pub items: Vec<Value>,
    pub over: u64,
}

impl<'de> DeserializeSeed<'de> for Container {
    type Value = Read;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Read, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Container {
    type Value = Read;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a container: {\"items\": [...]}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Read, A::Error> {
        let mut read = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "items" && read.is_none() {
                read = Some(map.next_value_seed(Items { budget: self.budget })?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        read.ok_or_else(|| serde::de::Error::missing_field("items"))
    }
}

struct Items {
    budget: usize,
}

impl<'de> DeserializeSeed<'de> for Items {
    type Value = Read;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Read, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Items {
    type Value = Read;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of items")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Read, A::Error> {
        let mut read = Read::default();
        loop {
            if read.items.len() < self.budget {
                match seq.next_element::<Value>()? {
                    Some(v) => read.items.push(v),
                    None => break,
                }
            } else {
                match seq.next_element::<IgnoredAny>()? {
                    Some(_) => read.over += 1,
                    None => break,
                }
            }
        }
        Ok(read)
    }
}

