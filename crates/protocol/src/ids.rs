//! Typed identifiers: event ids, project ids and public (client) keys.

use std::fmt;
use std::str::FromStr;

/// A 128-bit event id. Clients send 32 hex digits, with or without dashes; we always print
/// 32 lowercase hex digits without dashes, as Sentry does.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(pub [u8; 16]);

impl EventId {
    /// A fresh random id, for events that arrive without one.
    pub fn new_random() -> Self {
        EventId(*uuid::Uuid::new_v4().as_bytes())
    }

    /// Parses 32 hex digits, or 36 characters in the dashed UUID form. Case-insensitive.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let hex: String = match s.len() {
            32 => s.to_string(),
            36 => uuid::Uuid::parse_str(s).ok()?.simple().to_string(),
            _ => return None,
        };
        let mut out = [0u8; 16];
        for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
            let pair = std::str::from_utf8(chunk).ok()?;
            out[i] = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(EventId(out))
    }

    /// A stable id derived from this one and a label (for example a span id): used for the
    /// Query observations that a transaction's db spans produce, so that replaying the same
    /// transaction yields the same derived ids and stays idempotent.
    pub fn derive(&self, label: &str) -> EventId {
        // FNV-1a over (id, label), twice with different seeds, to fill 128 bits.
        fn fnv(seed: u64, a: &[u8], b: &[u8]) -> u64 {
            let mut h = 0xcbf29ce484222325u64 ^ seed;
            for &x in a.iter().chain([0xffu8].iter()).chain(b.iter()) {
                h ^= x as u64;
                h = h.wrapping_mul(0x100000001b3);
            }
            h
        }
        let hi = fnv(0x5e17, &self.0, label.as_bytes());
        let lo = fnv(0xa11ce, &self.0, label.as_bytes());
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&hi.to_be_bytes());
        out[8..].copy_from_slice(&lo.to_be_bytes());
        EventId(out)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

impl FromStr for EventId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        EventId::parse(s).ok_or(())
    }
}

/// A project's numeric id, the last path segment of a DSN. A plain number in JSON.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, serde::Serialize)]
#[serde(transparent)]
pub struct ProjectId(pub i64);

impl FromStr for ProjectId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(ProjectId)
    }
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A client key's public part (`sentry_key`), the user-name part of a DSN.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct PublicKey(pub String);

impl PublicKey {
    /// A fresh random key: 32 lowercase hex digits.
    pub fn new_random() -> Self {
        PublicKey(uuid::Uuid::new_v4().simple().to_string())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_id_forms() {
        let a = EventId::parse("0123456789ABCDEF0123456789abcdef").unwrap();
        let b = EventId::parse("01234567-89ab-cdef-0123-456789abcdef").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "0123456789abcdef0123456789abcdef");
        assert!(EventId::parse("xyz").is_none());
        assert!(EventId::parse("0123456789abcdef0123456789abcdeg").is_none());
        assert_ne!(a.derive("span1"), a.derive("span2"));
        assert_eq!(a.derive("span1"), a.derive("span1"));
    }
}
