//! Many claimers, completers and reapers at once: what several servers do to one database.

use std::collections::HashMap;
use std::sync::Arc;

use orchard_domain::{JobStatus, TaskStatus};
use orchard_store::{ClaimedTask, Completion, LeaseState, Store};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::fixtures::{LEASE_MS, T0, at, booting_job, claim, done_for, job, owner, runnable_ids};

/// Runs `n` loops that claim until nothing is left; returns every claim made. Each loop first
/// takes a connection of its own (a pool opens connections lazily, and one connection alone
/// would run every claim in turn), then they start together and claim back to back, so that
/// their statements overlap.
async fn claim_all(store: &Arc<dyn Store>, n: usize, now: i64) -> Vec<(usize, ClaimedTask)> {
    let job_ids: Arc<Vec<Uuid>> = Arc::new(runnable_ids(store.as_ref(), 100).await);
    let start = Arc::new(tokio::sync::Barrier::new(n));
    let mut set = JoinSet::new();
    for idx in 0..n {
        let (store, job_ids, start) = (store.clone(), job_ids.clone(), start.clone());
        set.spawn(async move {
            let worker = format!("w{idx}");
            let mut got = Vec::new();
            store.get_task(Uuid::nil()).await.unwrap();
            start.wait().await;
            while let Some(task) = store.claim_task(&worker, &job_ids, at(None, now)).await.unwrap() {
                got.push((idx, task));
            }
            got
        });
    }
    set.join_all().await.into_iter().flatten().collect()
}

dbtest!(concurrent_claimers_claim_every_task_exactly_once, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let jobs =
        [booting_job(store.as_ref(), alice, 8, 2, T0).await, booting_job(store.as_ref(), alice, 8, 3, T0 + 1).await];

    let claims = claim_all(&store, 32, T0 + 10).await;
    let mut per_task: HashMap<Uuid, usize> = HashMap::new();
    for (_, task) in &claims {
        *per_task.entry(task.lease.task_id).or_default() += 1;
        assert_eq!(task.lease.attempt, 1);
    }
    assert_eq!(per_task.len(), 16, "every task claimed");
    assert!(per_task.values().all(|it| *it == 1), "no task claimed twice: {per_task:?}");
    for (id, frames) in jobs.iter().zip([16, 24]) {
        let read = job(store.as_ref(), *id).await;
        assert_eq!((read.status, read.frames_rendering), (JobStatus::Rendering, frames));
        for task in store.list_tasks(*id).await.unwrap() {
            let (idx, _) = claims.iter().find(|(_, it)| it.lease.task_id == task.id).unwrap();
            assert_eq!((task.status, task.worker_id), (TaskStatus::Running, Some(format!("w{idx}"))));
        }
    }
});

dbtest!(concurrent_completions_count_every_frame_and_finalize_once, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let id = booting_job(store.as_ref(), alice, 16, 2, T0).await;
    let claims = claim_all(&store, 8, T0 + 10).await;
    assert_eq!(claims.len(), 16);

    let mut set = JoinSet::new();
    for (idx, (_, task)) in claims.into_iter().enumerate() {
        let store = store.clone();
        set.spawn(async move {
            let done = done_for(&task, 1.0);
            let now = T0 + 100 + idx as i64;
            assert_eq!(store.heartbeat(&task.lease, LEASE_MS, now, 0, 0.0).await.unwrap(), LeaseState::Held);
            store.complete_task(&task.lease, done, now).await.unwrap()
        });
    }
    let outcomes = set.join_all().await;
    assert!(outcomes.iter().all(|it| *it != Completion::Lost));
    let finishing = outcomes.iter().filter(|it| **it == Completion::JobFinished).count();
    assert_eq!(finishing, 1, "exactly one completion finishes the job");
    let read = job(store.as_ref(), id).await;
    assert_eq!(read.status, JobStatus::Finalizing);
    assert_eq!((read.frames_done, read.frames_rendering, read.normalized_seconds), (32, 0, 16.0));
    assert_eq!(store.list_outputs(id).await.unwrap().len(), 32);
});

dbtest!(completions_sent_together_over_several_jobs_count_once_and_finish_each_job_once, |store| {
    // Sent at once, these completions meet in the store's batches (PostgreSQL completes
    // whatever is waiting in one statement; SQLite in one transaction): whatever the batches,
    // each counts once, a completion sent twice counts once, each job finishes once.
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let (a, b, c) = (
        booting_job(store.as_ref(), alice, 24, 1, T0).await,
        booting_job(store.as_ref(), alice, 16, 2, T0 + 1).await,
        booting_job(store.as_ref(), alice, 12, 1, T0 + 2).await,
    );
    let claims = claim_all(&store, 8, T0 + 10).await;
    assert_eq!(claims.len(), 24 + 16 + 12);
    let mut sends: Vec<ClaimedTask> = Vec::new();
    let mut c_left = None;
    for (_, task) in claims {
        if task.job_id == c && c_left.is_none() {
            c_left = Some(task); // C keeps one task running: it must not finish.
            continue;
        }
        if task.job_id == b && !sends.iter().any(|it| it.job_id == b) {
            sends.push(task.clone()); // B's first task is completed twice.
        }
        sends.push(task);
    }
    let start = Arc::new(tokio::sync::Barrier::new(sends.len()));
    let mut set = JoinSet::new();
    for (idx, task) in sends.into_iter().enumerate() {
        let (store, start) = (store.clone(), start.clone());
        set.spawn(async move {
            start.wait().await;
            let outcome = store.complete_task(&task.lease, done_for(&task, 0.5), T0 + 100 + idx as i64).await;
            (task.job_id, outcome.unwrap())
        });
    }
    let outcomes = set.join_all().await;
    let count = |job_id, completion| outcomes.iter().filter(|(j, o)| *j == job_id && *o == completion).count();
    assert_eq!(
        (count(a, Completion::JobFinished), count(a, Completion::Completed), count(a, Completion::Lost)),
        (1, 23, 0)
    );
    assert_eq!(
        (count(b, Completion::JobFinished), count(b, Completion::Completed), count(b, Completion::Lost)),
        (1, 15, 1)
    );
    assert_eq!(
        (count(c, Completion::JobFinished), count(c, Completion::Completed), count(c, Completion::Lost)),
        (0, 11, 0)
    );
    for (id, status, frames, seconds) in
        [(a, JobStatus::Finalizing, 24, 12.0), (b, JobStatus::Finalizing, 32, 8.0), (c, JobStatus::Rendering, 11, 5.5)]
    {
        let read = job(store.as_ref(), id).await;
        assert_eq!((read.status, read.frames_done, read.normalized_seconds), (status, frames, seconds), "{id}");
        assert_eq!(store.list_outputs(id).await.unwrap().len() as i64, frames, "each frame stored once");
    }
    let left = c_left.unwrap();
    assert_eq!(
        store.complete_task(&left.lease, done_for(&left, 0.5), T0 + 1000).await.unwrap(),
        Completion::JobFinished
    );
    assert_eq!(job(store.as_ref(), c).await.status, JobStatus::Finalizing);
});

dbtest!(a_completion_the_database_refuses_fails_alone_in_its_batch, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let id = booting_job(store.as_ref(), alice, 16, 1, T0).await;
    let claims = claim_all(&store, 4, T0 + 10).await;
    let bad = claims[5].1.lease.task_id;
    let start = Arc::new(tokio::sync::Barrier::new(claims.len()));
    let mut set = JoinSet::new();
    for (_, task) in claims {
        let (store, start) = (store.clone(), start.clone());
        set.spawn(async move {
            let mut done = done_for(&task, 1.0);
            if task.lease.task_id == bad {
                done.outputs[0].kind = "thumbnail".into(); // not a kind the outputs table takes
            }
            start.wait().await;
            (task.lease.task_id, store.complete_task(&task.lease, done, T0 + 20).await)
        });
    }
    for (task_id, outcome) in set.join_all().await {
        if task_id == bad {
            assert!(outcome.is_err(), "the refused completion reports an error");
        } else {
            assert_eq!(outcome.unwrap(), Completion::Completed, "the others complete");
        }
    }
    let read = job(store.as_ref(), id).await;
    assert_eq!((read.status, read.frames_done), (JobStatus::Rendering, 15));
    assert_eq!(store.list_outputs(id).await.unwrap().len(), 15);
    let task = store.get_task(bad).await.unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Running, "nothing of the refused completion was kept");
});

dbtest!(claims_made_together_pass_over_a_job_only_for_the_worker_blocklisted_from_it, |store| {
    // Claims sent at once share statements (PostgreSQL leases tasks to all the workers that
    // claim from the same jobs in one); the blocklist still holds per worker.
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let blocked = booting_job(store.as_ref(), alice, 12, 1, T0).await;
    for attempt in 1..=3 {
        let task = claim(store.as_ref(), "w0", T0 + attempt).await.expect("a task");
        store.fail_task(&task.lease, "w0", "boom", 10, T0 + attempt).await.unwrap();
    }
    let other = booting_job(store.as_ref(), alice, 12, 1, T0 + 10).await;
    let job_ids: Arc<Vec<Uuid>> = Arc::new(runnable_ids(store.as_ref(), 100).await);
    for round in 0..3 {
        let start = Arc::new(tokio::sync::Barrier::new(6));
        let mut set = JoinSet::new();
        for idx in 0..6 {
            let (store, job_ids, start) = (store.clone(), job_ids.clone(), start.clone());
            set.spawn(async move {
                let worker = format!("w{idx}");
                start.wait().await;
                let task = store.claim_task(&worker, &job_ids, at(None, T0 + 20 + round)).await.unwrap();
                (worker, task.map(|it| it.job_id))
            });
        }
        for (worker, job_id) in set.join_all().await {
            let job_id = job_id.unwrap_or_else(|| panic!("{worker} got a task"));
            if worker == "w0" {
                assert_eq!(job_id, other, "w0 is blocklisted from the older job");
            } else if round < 2 {
                assert_eq!(job_id, blocked, "{worker} takes the older job's tasks first, as ever");
            }
        }
    }
    let running = |tasks: Vec<orchard_store::Task>| tasks.into_iter().filter(|it| it.status == TaskStatus::Running);
    assert!(running(store.list_tasks(blocked).await.unwrap()).all(|it| it.worker_id.as_deref() != Some("w0")));
    assert_eq!(
        running(store.list_tasks(other).await.unwrap()).filter(|it| it.worker_id.as_deref() == Some("w0")).count(),
        3
    );
});

dbtest!(a_stale_attempt_completed_with_the_current_one_stores_nothing, |store| {
    // Both attempts' completions arrive together (and often share a batch; five rounds make
    // that likely): only the attempt that holds the task completes it, and only its outputs
    // are kept.
    let alice = owner(store.as_ref(), "studio", "alice").await;
    for round in 0..5 {
        let t = T0 + round * 10 * LEASE_MS;
        let id = booting_job(store.as_ref(), alice, 1, 2, t).await;
        let stale = claim(store.as_ref(), "w1", t).await.unwrap();
        assert_eq!(store.requeue_expired(t + LEASE_MS + 1).await.unwrap(), 1);
        let current = claim(store.as_ref(), "w2", t + LEASE_MS + 2).await.unwrap();
        assert_eq!((current.lease.task_id, current.lease.attempt), (stale.lease.task_id, 2));
        let mut stale_done = done_for(&stale, 1.0);
        for output in &mut stale_done.outputs {
            output.object_key = format!("stale/{}", output.file_name);
        }
        let current_done = done_for(&current, 1.0);
        // Polled in turn, the stale completion is sent first: its outputs would be kept if
        // they were stored.
        let (a, b) = tokio::join!(
            store.complete_task(&stale.lease, stale_done, t + LEASE_MS + 3),
            store.complete_task(&current.lease, current_done, t + LEASE_MS + 3)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!((a, b), (Completion::Lost, Completion::JobFinished));
        let outputs = store.list_outputs(id).await.unwrap();
        assert_eq!(outputs.len(), 2);
        assert!(outputs.iter().all(|it| it.object_key.starts_with("jobs/")), "the current attempt's: {outputs:?}");
        assert_eq!(job(store.as_ref(), id).await.frames_done, 2);
    }
});

dbtest!(concurrent_reapers_requeue_each_expired_task_once, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let id = booting_job(store.as_ref(), alice, 16, 1, T0).await;
    assert_eq!(claim_all(&store, 4, T0).await.len(), 16);

    let mut set = JoinSet::new();
    for _ in 0..4 {
        let store = store.clone();
        set.spawn(async move { store.requeue_expired(T0 + LEASE_MS + 1).await.unwrap() });
    }
    assert_eq!(set.join_all().await.into_iter().sum::<u64>(), 16);
    let read = job(store.as_ref(), id).await;
    assert_eq!(read.frames_rendering, 0);
    assert!(store.list_tasks(id).await.unwrap().iter().all(|it| it.status == TaskStatus::Queued && it.attempt == 1));

    // Requeued tasks are claimed again, each once, with the next attempt.
    let claims = claim_all(&store, 8, T0 + LEASE_MS + 2).await;
    assert_eq!(claims.len(), 16);
    assert!(claims.iter().all(|(_, it)| it.lease.attempt == 2));
});

dbtest!(a_cancel_racing_claims_and_completions_leaves_nothing_running, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let id = booting_job(store.as_ref(), alice, 32, 1, T0).await;
    let mut set = JoinSet::new();
    for idx in 0..8 {
        let store = store.clone();
        set.spawn(async move {
            while let Some(task) = claim(store.as_ref(), &format!("w{idx}"), T0).await {
                store.complete_task(&task.lease, done_for(&task, 1.0), T0 + 1).await.unwrap();
            }
        });
    }
    let canceler = {
        let store = store.clone();
        tokio::spawn(async move {
            // Whatever status the workers moved it to, cancel from the one read.
            loop {
                let status = job(store.as_ref(), id).await.status;
                if status.is_terminal() || status == JobStatus::Finalizing {
                    return false;
                }
                if store.cancel_job(id, status, T0 + 2).await.unwrap() {
                    return true;
                }
            }
        })
    };
    set.join_all().await;
    let canceled = canceler.await.unwrap();
    let read = job(store.as_ref(), id).await;
    let tasks = store.list_tasks(id).await.unwrap();
    assert!(tasks.iter().all(|it| matches!(it.status, TaskStatus::Completed | TaskStatus::Canceled)), "{tasks:?}");
    let completed = tasks.iter().filter(|it| it.status == TaskStatus::Completed).count() as i64;
    assert_eq!(read.frames_done, completed, "counters match the tasks");
    assert_eq!(store.list_outputs(id).await.unwrap().len() as i64, completed);
    if canceled {
        assert_eq!((read.status, read.frames_rendering), (JobStatus::Canceled, 0));
    } else {
        assert_eq!((read.status, completed), (JobStatus::Finalizing, 32));
    }
});
