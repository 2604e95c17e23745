//! The one integration-test binary of the `sentry` server: every test drives the real binary
//! (`CARGO_BIN_EXE_sentry`) through `harness`.
mod harness;

mod bad_input;
mod cli;
mod clients;
mod corpus;
mod durability;
mod reliability;
mod tidy;
mod notify;
