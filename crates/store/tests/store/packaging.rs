//! Packaging: a finalizing job's video task, claimed with a lease, taken over when the lease
//! runs out, fenced by its attempt, failed for good after its attempts.

use orchard_domain::{JobStatus, PackagingStatus};

use crate::fixtures::{LEASE_MS, T0, booting_job, claim, done_for, job, owner};

/// A job whose one task is rendered: `finalizing`.
async fn finalizing_job(store: &dyn orchard_store::Store, user: &str) -> uuid::Uuid {
    let alice = owner(store, "studio", user).await;
    let id = booting_job(store, alice, 1, 2, T0).await;
    let task = claim(store, "w1", T0 + 1).await.expect("a task");
    store.complete_task(&task.lease, done_for(&task, 1.0), T0 + 2).await.unwrap();
    assert_eq!(job(store, id).await.status, JobStatus::Finalizing);
    id
}

dbtest!(packaging_is_claimed_once_fenced_by_its_attempt_and_finished, |store| {
    let store = store.as_ref();
    assert_eq!(store.claim_packaging("w1", T0, T0 + LEASE_MS).await.unwrap(), None, "nothing queued");
    let id = finalizing_job(store, "alice").await;
    let queued = store.queue_packaging(id, T0 + 3).await.unwrap();
    assert_eq!((queued.status, queued.attempt, queued.job_id), (PackagingStatus::Queued, 0, id));
    assert_eq!(store.queue_packaging(id, T0 + 4).await.unwrap().id, queued.id, "one per job");

    let claimed = store.claim_packaging("w1", T0 + 5, T0 + 5 + LEASE_MS).await.unwrap().expect("claimed");
    assert_eq!((claimed.id, claimed.status, claimed.attempt), (queued.id, PackagingStatus::Running, 1));
    assert_eq!(claimed.worker_id.as_deref(), Some("w1"));
    assert_eq!(store.claim_packaging("w2", T0 + 6, T0 + 6 + LEASE_MS).await.unwrap(), None, "leased");
    assert!(store.renew_packaging(claimed.id, 1, "w1", T0 + 10 + LEASE_MS).await.unwrap());
    assert!(!store.renew_packaging(claimed.id, 1, "w2", T0 + 10 + LEASE_MS).await.unwrap(), "not w2's");

    // The lease runs out: the next claim takes it over, and the first attempt is fenced out.
    let later = T0 + 11 + LEASE_MS;
    let taken = store.claim_packaging("w2", later, later + LEASE_MS).await.unwrap().expect("taken over");
    assert_eq!((taken.attempt, taken.worker_id.as_deref()), (2, Some("w2")));
    assert!(!store.finish_packaging(claimed.id, 1, "w1", "{}", later).await.unwrap());
    assert!(!store.fail_packaging(claimed.id, 1, "w1", "late", 3, later).await.unwrap());
    assert!(store.finish_packaging(taken.id, 2, "w2", r#"{"frames":2}"#, later + 1).await.unwrap());
    let done = store.packaging(id).await.unwrap().expect("kept");
    assert_eq!((done.status, done.result.as_deref()), (PackagingStatus::Done, Some(r#"{"frames":2}"#)));
    assert_eq!(store.claim_packaging("w3", later + 2, later + 2 + LEASE_MS).await.unwrap(), None, "done");

    // A retry forgets it; deleting the job takes it along.
    store.forget_packaging(id).await.unwrap();
    assert_eq!(store.packaging(id).await.unwrap(), None);
    store.queue_packaging(id, later + 3).await.unwrap();
    let patch = orchard_store::JobPatch::default();
    assert!(store.transition_job(id, JobStatus::Finalizing, JobStatus::Completed, patch, later + 4).await.unwrap());
    assert!(store.delete_job(id).await.unwrap());
    assert_eq!(store.packaging(id).await.unwrap(), None);
});

dbtest!(packaging_fails_for_good_after_its_attempts_and_only_for_finalizing_jobs, |store| {
    let store = store.as_ref();
    let id = finalizing_job(store, "alice").await;
    let queued = store.queue_packaging(id, T0 + 3).await.unwrap();
    for n in 1..=3 {
        let now = T0 + 10 * n;
        let claimed = store.claim_packaging("w1", now, now + LEASE_MS).await.unwrap().expect("claimed");
        assert!(store.fail_packaging(queued.id, claimed.attempt, "w1", &format!("no. {n}"), 3, now + 1).await.unwrap());
    }
    let failed = store.packaging_by_id(queued.id).await.unwrap().expect("kept");
    assert_eq!((failed.status, failed.failures), (PackagingStatus::Failed, 3));
    assert_eq!(failed.error.as_deref(), Some("no. 3"));
    assert_eq!(store.claim_packaging("w1", T0 + 100, T0 + 100 + LEASE_MS).await.unwrap(), None);

    // A job that left `finalizing` (canceled) offers its packaging to no one.
    let other = finalizing_job(store, "bob").await;
    store.queue_packaging(other, T0 + 200).await.unwrap();
    let patch = orchard_store::JobPatch::default();
    assert!(store.transition_job(other, JobStatus::Finalizing, JobStatus::Canceled, patch, T0 + 201).await.unwrap());
    assert_eq!(store.claim_packaging("w1", T0 + 202, T0 + 202 + LEASE_MS).await.unwrap(), None);
});
