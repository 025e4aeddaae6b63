//! `dbtest!` and the databases it runs each body on.

use std::future::Future;
use std::sync::Arc;

use orchard_store::{CachedReads, PgStore, SqliteStore, Store};
use sqlx::{AssertSqlSafe, Connection, PgConnection, SqliteConnection};

/// The backends every body runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// Defines a test whose body runs once per backend, as `NAME::sqlite` and `NAME::postgres`;
/// a body that names a second argument also gets the [`Database`] itself.
///
/// ```ignore
/// dbtest!(a_key_is_found_by_its_hash, |store| { ... });
/// dbtest!(a_corrupt_row_is_an_error, |store, db| { ... });
/// ```
macro_rules! dbtest {
    ($name:ident, |$store:ident| $body:block) => {
        dbtest!($name, |$store, _db| $body);
    };
    ($name:ident, |$store:ident, $db:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($store: std::sync::Arc<dyn orchard_store::Store>, $db: crate::backends::Database) $body

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

/// The database a body runs on, for what no store method does: writing values the store
/// never writes, opening a second store.
#[derive(Debug, Clone)]
pub(crate) struct Database {
    backend: Backend,
    url: String,
}

impl Database {
    /// Runs `sql` on the database, outside the store.
    pub(crate) async fn execute(&self, sql: &str) {
        let sql = AssertSqlSafe(sql.to_string());
        match self.backend {
            Backend::Sqlite => {
                let mut conn = SqliteConnection::connect(&self.url).await.expect("SQLite connects");
                sqlx::query(sql).execute(&mut conn).await.expect("statement runs");
                conn.close().await.expect("connection closes");
            }
            Backend::Postgres => {
                let mut conn = PgConnection::connect(&self.url).await.expect("PostgreSQL connects");
                sqlx::query(sql).execute(&mut conn).await.expect("statement runs");
                conn.close().await.expect("connection closes");
            }
        }
    }

    /// Another store on the same database with its job reads remembered, as a server opens it.
    pub(crate) async fn cached_store(&self) -> Arc<dyn Store> {
        match self.backend {
            Backend::Sqlite => {
                Arc::new(CachedReads::new(SqliteStore::connect(&self.url).await.expect("SQLite store opens")))
            }
            Backend::Postgres => {
                Arc::new(CachedReads::new(PgStore::connect(&self.url).await.expect("PostgreSQL store opens")))
            }
        }
    }

    /// Another store on the same database, as another server would open it (nothing cached).
    pub(crate) async fn another_store(&self) -> Arc<dyn Store> {
        match self.backend {
            Backend::Sqlite => Arc::new(SqliteStore::connect(&self.url).await.expect("SQLite store opens")),
            Backend::Postgres => Arc::new(PgStore::connect(&self.url).await.expect("PostgreSQL store opens")),
        }
    }
}

/// Runs `body` against a fresh database of `backend`. A body that fails leaves its
/// PostgreSQL database behind for inspection; one that passes drops it.
pub(crate) async fn run<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(Arc<dyn Store>, Database) -> Fut,
    Fut: Future<Output = ()>,
{
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("orchard.db").display());
            let store = SqliteStore::connect(&url).await.expect("SQLite store opens");
            body(Arc::new(store), Database { backend, url }).await;
        }
        Backend::Postgres => {
            let Some(server) = postgres_url() else { return };
            let name = format!("orchard_test_{}", uuid::Uuid::new_v4().simple());
            let url = PgStore::create_database(&server, &name).await.expect("test database created");
            let store = PgStore::connect(&url).await.expect("PostgreSQL store opens");
            body(Arc::new(store.clone()), Database { backend, url }).await;
            store.close().await;
            PgStore::drop_database(&server, &name).await.expect("test database dropped");
        }
    }
}

/// `ORCHARD_TEST_POSTGRES_URL`, or `None` (with a note) when PostgreSQL tests are skipped.
///
/// # Panics
/// When `ORCHARD_REQUIRE_POSTGRES=1` and the URL is not set: CI must not pass by skipping.
pub(crate) fn postgres_url() -> Option<String> {
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
