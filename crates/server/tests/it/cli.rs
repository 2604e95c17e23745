//! The `sentry` command line: config, projects, keys, capture, groups and events.
