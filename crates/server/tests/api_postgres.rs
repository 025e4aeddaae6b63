//! The black-box API suite of `tests/api/`, compiled a second time with the store on
//! PostgreSQL: each server gets a fresh database on `ORCHARD_TEST_POSTGRES_URL`. The tests
//! are the same files; `helpers::spawn_app_with` picks the backend by the crate it is
//! compiled into.
#![allow(clippy::unwrap_used)]
// a test that cannot set itself up should panic right there

// The suite's tests reach their helpers as `crate::helpers`, so they are declared here, at
// this crate's root; the suite's own `mod helpers` is a second copy that nothing uses.
#![allow(clippy::duplicate_mod)]

#[path = "api/helpers.rs"]
mod helpers;

#[allow(dead_code)]
#[path = "api/main.rs"]
mod api;
