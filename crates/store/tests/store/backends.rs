//! `dbtest!` and the databases it runs each body on.

use std::future::Future;
use std::sync::Arc;

use orchard_store::{PgStore, SqliteStore, Store};

/// The backends every body runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Defines a test whose body runs once per backend, as `NAME::sqlite` and `NAME::postgres`.
///
/// ```ignore
/// dbtest!(a_key_is_found_by_its_hash, |store| { ... });
/// ```
macro_rules! dbtest {
    ($name:ident, |$store:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($store: std::sync::Arc<dyn orchard_store::Store>) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                crate::backends::run(crate::backends::Backend::Sqlite, body).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                crate::backends::run(crate::backends::Backend::Postgres, body).await
            }
        }
    };
}

/// Runs `body` against a fresh database of `backend`. A body that fails leaves its
/// PostgreSQL database behind for inspection; one that passes drops it.
pub async fn run<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("orchard.db").display());
            let store = SqliteStore::connect(&url).await.expect("SQLite store opens");
            body(Arc::new(store)).await;
        }
        Backend::Postgres => {
            let Some(server) = postgres_url() else { return };
            let name = format!("orchard_test_{}", uuid::Uuid::new_v4().simple());
            let url = PgStore::create_database(&server, &name).await.expect("test database created");
            let store = PgStore::connect(&url).await.expect("PostgreSQL store opens");
            body(Arc::new(store.clone())).await;
            store.close().await;
            PgStore::drop_database(&server, &name).await.expect("test database dropped");
        }
    }
}

/// `ORCHARD_TEST_POSTGRES_URL`, or `None` (with a note) when PostgreSQL tests are skipped.
///
/// # Panics
/// When `ORCHARD_REQUIRE_POSTGRES=1` and the URL is not set: CI must not pass by skipping.
pub fn postgres_url() -> Option<String> {
    match std::env::var("ORCHARD_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("ORCHARD_REQUIRE_POSTGRES").is_ok_and(|it| it == "1") {
                panic!("ORCHARD_REQUIRE_POSTGRES=1 but ORCHARD_TEST_POSTGRES_URL is not set");
            }
            eprintln!("skipped: set ORCHARD_TEST_POSTGRES_URL to run this test on PostgreSQL");
            None
        }
    }
}
