//! The Sentry wire protocol, as real clients speak it: DSNs and auth headers, envelope framing,
//! body decoding (with streaming size caps), and the lenient event schema that turns whatever a
//! client sent into one normalised [`Event`].
//!
//! Architecture invariant: this crate is pure. Bytes in, typed values out. No I/O, no async, and
//! no panic on client input: every refusal is a typed error that the HTTP layer maps to a status.

pub mod auth;
pub mod decode;
pub mod dsn;
pub mod envelope;
pub mod event;
pub mod ids;
pub mod limits;

pub use auth::{Auth, AuthError};
pub use decode::{ContentEncoding, DecodeError};
pub use dsn::{Dsn, DsnError};
pub use envelope::{Envelope, EnvelopeError, Item, ItemType};
pub use event::{Event, EventKind, Level, NormalizeError};
pub use ids::{EventId, ProjectId, PublicKey};
pub use limits::Limits;
