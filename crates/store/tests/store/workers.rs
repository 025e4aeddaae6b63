//! Worker tokens and registrations.

use orchard_domain::{BlenderBuild, WorkerCapabilities};
use orchard_store::{StoreError, WorkerRecord};

use crate::fixtures::T0;

fn capabilities() -> WorkerCapabilities {
    WorkerCapabilities {
        blenders: vec![BlenderBuild {
            version: "4.2.1".into(),
            oidn: true,
            eevee: false,
            gpu_backends: vec!["CUDA".into()],
        }],
        cpu_threads: 16,
        ram_gib: 62.5,
        tags: vec!["farm".into()],
        ffmpeg: None,
    }
}

dbtest!(a_worker_registers_with_its_token_and_again_after_a_restart, |store| {
    let token = store.create_worker_token("token-hash", "OW-abc", T0).await.unwrap();
    assert_eq!(store.find_worker_token("token-hash").await.unwrap(), Some(token));
    assert_eq!(store.find_worker_token("other").await.unwrap(), None);

    let mut worker = WorkerRecord {
        id: "node-1".into(),
        name: "render-01".into(),
        token_id: token,
        capabilities: capabilities(),
        speed_factor: 1.5,
        speed_measured: 1.5,
        speed_spread: Some(0.02),
        speed_observations: 0,
        registered_at: T0,
        last_seen_at: T0,
        draining: false,
    };
    store.register_worker(&worker).await.unwrap();
    let read = store.get_worker("node-1").await.unwrap().expect("registered");
    assert_eq!((read.name.as_str(), read.token_id, read.speed_factor), ("render-01", token, 1.5));
    assert_eq!(read.capabilities, worker.capabilities);
    assert!(store.get_worker("node-2").await.unwrap().is_none());

    worker.name = "render-01b".into();
    worker.registered_at = T0 + 500;
    worker.last_seen_at = T0 + 500;
    store.register_worker(&worker).await.unwrap();
    let read = store.get_worker("node-1").await.unwrap().unwrap();
    assert_eq!((read.name.as_str(), read.registered_at, read.last_seen_at), ("render-01b", T0, T0 + 500));

    // Shared jobs refine the factor; a restart with the same measurement keeps what they said,
    // a new measurement (new hardware, new Blender) starts over from it.
    store.refine_speed("node-1", 1.2).await.unwrap();
    store.register_worker(&worker).await.unwrap();
    let read = store.get_worker("node-1").await.unwrap().unwrap();
    assert_eq!(
        (read.speed_factor, read.speed_measured, read.speed_spread, read.speed_observations),
        (1.2, 1.5, Some(0.02), 1)
    );
    store.register_worker(&WorkerRecord { speed_factor: 3.0, speed_measured: 3.0, ..worker.clone() }).await.unwrap();
    let read = store.get_worker("node-1").await.unwrap().unwrap();
    assert_eq!((read.speed_factor, read.speed_measured, read.speed_observations), (3.0, 3.0, 0));
    store.register_worker(&worker).await.unwrap();

    store.touch_worker("node-1", T0 + 1000).await.unwrap();
    let other = WorkerRecord { id: "node-2".into(), last_seen_at: T0 + 10, registered_at: T0 + 10, ..worker };
    store.register_worker(&other).await.unwrap();
    let live: Vec<_> = store.live_workers(T0 + 10).await.unwrap().into_iter().map(|it| it.id).collect();
    assert_eq!(live, ["node-1", "node-2"], "by registration");
    let live: Vec<_> = store.live_workers(T0 + 11).await.unwrap().into_iter().map(|it| it.id).collect();
    assert_eq!(live, ["node-1"]);
});

dbtest!(a_worker_whose_capabilities_do_not_decode_is_corrupt, |store, db| {
    let token = store.create_worker_token("token-hash", "OW-abc", T0).await.unwrap();
    let worker = node_1(token);
    store.register_worker(&worker).await.unwrap();
    db.execute("update workers set capabilities = '{\"blenders\": \"all\"}' where id = 'node-1'").await;
    for error in [store.get_worker("node-1").await.unwrap_err(), store.live_workers(T0).await.unwrap_err()] {
        match error {
            StoreError::Corrupt { table, column, source } => {
                assert_eq!((table, column), ("workers", "capabilities"));
                assert!(source.downcast_ref::<serde_json::Error>().is_some(), "{source:?}");
            }
            other => panic!("not a corrupt row: {other:?}"),
        }
    }
});

dbtest!(a_drained_worker_stays_drained_when_it_registers_again, |store| {
    let token = store.create_worker_token("token-hash", "OW-abc", T0).await.unwrap();
    let worker = node_1(token);
    store.register_worker(&worker).await.unwrap();
    assert!(store.set_draining("node-1", true).await.unwrap());
    assert!(!store.set_draining("node-2", true).await.unwrap());
    store.register_worker(&WorkerRecord { last_seen_at: T0 + 5, ..worker }).await.unwrap();
    assert!(store.get_worker("node-1").await.unwrap().unwrap().draining, "registering does not undrain");
    assert!(store.set_draining("node-1", false).await.unwrap());
    assert!(!store.get_worker("node-1").await.unwrap().unwrap().draining);
    assert!(store.running_tasks().await.unwrap().is_empty());
});

dbtest!(worker_tokens_are_listed_with_their_workers_and_revoked_by_prefix, |store| {
    let token = store.create_worker_token("token-hash", "OW-abc", T0).await.unwrap();
    let other = store.create_worker_token("other-hash", "OW-def", T0 + 1).await.unwrap();
    let worker = node_1(token);
    store.register_worker(&worker).await.unwrap();
    let listed = store.list_worker_tokens().await.unwrap();
    let summary: Vec<_> = listed.iter().map(|it| (it.id, it.prefix.as_str(), it.workers, it.revoked_at)).collect();
    assert_eq!(summary, [(other, "OW-def", 0, None), (token, "OW-abc", 1, None)], "newest first");
    assert!(store.revoke_worker_token("OW-abc", T0 + 10).await.unwrap());
    assert!(!store.revoke_worker_token("OW-abc", T0 + 11).await.unwrap(), "already revoked");
    assert!(!store.revoke_worker_token("OW-zzz", T0 + 11).await.unwrap());
    assert_eq!(store.find_worker_token("token-hash").await.unwrap(), None, "a revoked token is refused");
    assert_eq!(store.find_worker_token("other-hash").await.unwrap(), Some(other));
    assert_eq!(store.list_worker_tokens().await.unwrap()[1].revoked_at, Some(T0 + 10));
});

/// Worker `node-1` of `token`, registered at T0.
fn node_1(token: uuid::Uuid) -> WorkerRecord {
    WorkerRecord {
        id: "node-1".into(),
        name: "render-01".into(),
        token_id: token,
        capabilities: capabilities(),
        speed_factor: 1.0,
        speed_measured: 1.0,
        speed_spread: None,
        speed_observations: 0,
        registered_at: T0,
        last_seen_at: T0,
        draining: false,
    }
}
