//! Migrations are safe when several processes open one fresh database at once: `orchard
//! serve` and `orchard keys create` started together on a new data folder used to race, and
//! the loser failed with "table settings already exists".

use orchard_store::{PgStore, SqliteStore};

/// Stores opened at once on one fresh database, each with its own connections (as separate
/// processes have).
const AT_ONCE: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_stores_may_migrate_one_fresh_sqlite_file_at_once() {
    for round in 0..4 {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("orchard.db").display());
        let opened = futures_join(AT_ONCE, || {
            let url = url.clone();
            async move { SqliteStore::connect(&url).await }
        })
        .await;
        for (i, result) in opened.into_iter().enumerate() {
            if let Err(error) = result {
                panic!("round {round}, store {i}: {error:?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_stores_may_migrate_one_fresh_postgres_database_at_once() {
    let Some(server) = std::env::var("ORCHARD_TEST_POSTGRES_URL").ok().filter(|it| !it.is_empty()) else {
        assert!(std::env::var("ORCHARD_REQUIRE_POSTGRES").is_err(), "ORCHARD_TEST_POSTGRES_URL is not set");
        return;
    };
    let name = format!("orchard_migrate_{}", uuid::Uuid::new_v4().simple());
    let url = PgStore::create_database(&server, &name).await.expect("database created");
    let opened = futures_join(AT_ONCE, || {
        let url = url.clone();
        async move { PgStore::connect(&url).await }
    })
    .await;
    let failures: Vec<String> = opened.iter().filter_map(|it| it.as_ref().err()).map(|it| format!("{it:?}")).collect();
    drop(opened);
    PgStore::drop_database(&server, &name).await.expect("database dropped");
    assert!(failures.is_empty(), "{failures:?}");
}

/// Runs `n` futures made by `make` at once, on the runtime's threads.
async fn futures_join<F, Fut, T>(n: usize, make: F) -> Vec<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|_| tokio::spawn(make())).collect();
    let mut results = Vec::with_capacity(n);
    for handle in handles {
        results.push(handle.await.expect("task ran"));
    }
    results
}
