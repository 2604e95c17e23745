//! Envelope items other than `event` and `transaction` that are used, one module per type: how
//! each becomes what is stored. `process` calls them; each is bounded by construction and
//! counts what it drops.

pub mod check_ins;
pub mod client_reports;
mod container;
pub mod feedback;
pub mod sessions;
pub mod logs;
pub mod spans;
