//! Acknowledged events survive kill -9 and restarts, and are processed exactly once.
