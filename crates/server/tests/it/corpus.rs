//! Replays the recorded real-client requests (tests/fixtures/corpus) against the real binary.
