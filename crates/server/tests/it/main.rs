//! The one integration-test binary of the `sentry` server: every test drives the real binary
//! (`CARGO_BIN_EXE_sentry`) through `harness`.
mod harness;

mod accounts;
mod api;
mod bad_input;
mod browser;
mod cli;
mod clients;
mod corpus;
mod dashboard;
mod deleting;
mod dist;
mod durability;
mod environments;
mod first_hour;
mod health;
mod housekeeping;
mod items;
mod logs;
mod monitors;
mod nodes;
mod reliability;
mod sso;
mod tidy;
mod notify;
mod onboarding;
mod owners;
mod people;
mod notify_services;
mod web_security;
