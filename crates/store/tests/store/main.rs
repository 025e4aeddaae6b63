//! The store conformance suite: every test body runs on SQLite (a temp file) and on
//! PostgreSQL (a fresh, randomly named database on the server `ORCHARD_TEST_POSTGRES_URL`
//! points at). Without that variable the PostgreSQL runs are skipped, unless
//! `ORCHARD_REQUIRE_POSTGRES=1` (set by `dev/test`), which makes them fail instead.
// Test bodies are `async fn`s that `dbtest!` calls, not `#[test]`s: clippy.toml's leave to
// unwrap in tests does not reach them.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod backends;
mod fixtures;

mod accounts;
mod claims;
mod jobs;
mod packaging;
mod tasks;
mod workers;
