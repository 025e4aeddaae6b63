//! Rendering: start, claim, heartbeat, complete, fail, lease expiry, cancel.

use orchard_domain::{JobStatus, TaskStatus};
use orchard_store::{ClaimOptions, Completion, FailOutcome, LeaseState, NextClaim, StartRender, StoreError, TaskDone};

use crate::fixtures::{
    LEASE_MS, T0, at, booting_job, claim, done_for, final_config, job, owner, requested_config, runnable_ids,
    validated_job,
};

dbtest!(a_render_goes_from_claims_to_finalizing_with_maintained_counters, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let id = booting_job(store.as_ref(), alice, 3, 2, T0).await;
    let read = job(store.as_ref(), id).await;
    assert_eq!((read.status, read.frames_total, read.render_started_at), (JobStatus::Booting, 6, None));
    assert_eq!((read.requested_config, read.final_config), (Some(requested_config()), Some(final_config())));
    let tasks = store.list_tasks(id).await.unwrap();
    assert_eq!(tasks.iter().map(|it| it.seq).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(tasks[1].frames.frames(), [3, 4]);
    assert!(tasks.iter().all(|it| it.status == TaskStatus::Queued && it.attempt == 0 && it.worker_id.is_none()));

    // A second /render finds the job no longer validated.
    let again = StartRender {
        requested_config: requested_config(),
        final_config: final_config(),
        chunks: vec![],
        priority: None,
    };
    assert!(!store.start_render(id, again, T0).await.unwrap());
    assert_eq!(store.list_tasks(id).await.unwrap().len(), 3);

    let first = claim(store.as_ref(), "w1", T0 + 10).await.expect("a task");
    assert_eq!((first.job_id, first.lease.attempt, first.frames.frames()), (id, 1, &[1, 2][..]));
    let read = job(store.as_ref(), id).await;
    assert_eq!((read.status, read.frames_rendering, read.render_started_at), (JobStatus::Rendering, 2, Some(T0 + 10)));
    let task = store.get_task(first.lease.task_id).await.unwrap().expect("task");
    assert_eq!((task.status, task.attempt, task.worker_id.as_deref()), (TaskStatus::Running, 1, Some("w1")));

    assert_eq!(store.heartbeat(&first.lease, LEASE_MS, T0 + 20, 0, 0.0).await.unwrap(), LeaseState::Held);
    let second = claim(store.as_ref(), "w2", T0 + 30).await.expect("a task");
    let third = claim(store.as_ref(), "w3", T0 + 30).await.expect("a task");
    assert_eq!(third.frames.frames(), [5, 6]);
    assert!(claim(store.as_ref(), "w4", T0 + 30).await.is_none(), "every task is leased");
    assert_eq!(job(store.as_ref(), id).await.frames_rendering, 6);
    assert_eq!(job(store.as_ref(), id).await.render_started_at, Some(T0 + 10), "set by the first claim only");

    assert_eq!(store.complete_task(&first.lease, done_for(&first, 2.0), T0 + 40).await.unwrap(), Completion::Completed);
    let read = job(store.as_ref(), id).await;
    assert_eq!((read.status, read.frames_done, read.frames_rendering), (JobStatus::Rendering, 2, 4));
    assert_eq!(read.normalized_seconds, 2.0);
    assert_eq!(store.complete_task(&first.lease, done_for(&first, 2.0), T0 + 41).await.unwrap(), Completion::Lost);
    assert_eq!(job(store.as_ref(), id).await.frames_done, 2, "a repeated completion counts nothing");
    assert_eq!(store.heartbeat(&first.lease, LEASE_MS, T0 + 42, 0, 0.0).await.unwrap(), LeaseState::Lost);

    let with_speed = TaskDone { speed_factor: 0.5, ..done_for(&second, 4.0) };
    assert_eq!(store.complete_task(&second.lease, with_speed, T0 + 50).await.unwrap(), Completion::Completed);
    assert_eq!(
        store.complete_task(&third.lease, done_for(&third, 1.0), T0 + 60).await.unwrap(),
        Completion::JobFinished
    );
    let read = job(store.as_ref(), id).await;
    assert_eq!(read.status, JobStatus::Finalizing, "the last task moves its job on");
    assert_eq!((read.frames_done, read.frames_rendering, read.frames_failed), (6, 0, 0));
    assert_eq!(read.normalized_seconds, 5.0);
    assert!(store.list_tasks(id).await.unwrap().iter().all(|it| it.status == TaskStatus::Completed));

    let outputs = store.list_outputs(id).await.unwrap();
    assert_eq!(outputs.iter().map(|it| it.frame).collect::<Vec<_>>(), (1..=6).map(Some).collect::<Vec<_>>());
    assert_eq!(outputs[0].file_name, "0001.png");
    assert_eq!((outputs[0].size, outputs[0].created_at), (101, T0 + 40));
    assert!(runnable_ids(store.as_ref(), 10).await.is_empty());
});

dbtest!(a_frame_is_stored_once_whatever_tasks_deliver_it, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let id = booting_job(store.as_ref(), alice, 2, 1, T0).await;
    let first = claim(store.as_ref(), "w1", T0).await.unwrap();
    let second = claim(store.as_ref(), "w2", T0).await.unwrap();
    // Both deliver a composite with the same name, and the second repeats the first's frame.
    let mut done = done_for(&first, 1.0);
    done.outputs.push(orchard_store::NewOutput {
        kind: "composite".into(),
        frame: None,
        file_name: "contact.png".into(),
        object_key: "jobs/x/contact-1.png".into(),
        size: 1,
    });
    let mut again = done.clone();
    again.outputs.extend(done_for(&second, 1.0).outputs);
    assert_eq!(store.complete_task(&first.lease, done, T0 + 1).await.unwrap(), Completion::Completed);
    assert_eq!(store.complete_task(&second.lease, again, T0 + 2).await.unwrap(), Completion::JobFinished);
    let outputs = store.list_outputs(id).await.unwrap();
    let names: Vec<_> = outputs.iter().map(|it| (it.kind.as_str(), it.file_name.as_str())).collect();
    assert_eq!(names, [("composite", "contact.png"), ("frame", "0001.png"), ("frame", "0002.png")]);
    assert_eq!(outputs[0].object_key, "jobs/x/contact-1.png", "the first delivery stays");
    assert_eq!(job(store.as_ref(), id).await.status, JobStatus::Finalizing);
});

dbtest!(an_old_attempt_is_fenced_once_its_lease_expired_and_the_task_was_claimed_again, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let id = booting_job(store.as_ref(), alice, 1, 3, T0).await;
    let old = claim(store.as_ref(), "w1", T0).await.unwrap();
    assert_eq!(store.requeue_expired(T0 + LEASE_MS - 1).await.unwrap(), 0, "the lease still holds");
    assert_eq!(store.heartbeat(&old.lease, LEASE_MS, T0 + 1000, 0, 0.0).await.unwrap(), LeaseState::Held);
    assert_eq!(store.requeue_expired(T0 + LEASE_MS + 500).await.unwrap(), 0, "the heartbeat extended it");

    let expired = T0 + 1000 + LEASE_MS + 1;
    assert_eq!(store.requeue_expired(expired).await.unwrap(), 1);
    assert_eq!(store.requeue_expired(expired).await.unwrap(), 0);
    let read = job(store.as_ref(), id).await;
    assert_eq!((read.status, read.frames_rendering), (JobStatus::Rendering, 0));
    let task = store.get_task(old.lease.task_id).await.unwrap().unwrap();
    assert_eq!((task.status, task.attempt, task.worker_id), (TaskStatus::Queued, 1, None));
    assert_eq!(store.heartbeat(&old.lease, LEASE_MS, expired, 0, 0.0).await.unwrap(), LeaseState::Lost);

    let new = claim(store.as_ref(), "w2", expired + 1).await.unwrap();
    assert_eq!((new.lease.task_id, new.lease.attempt), (old.lease.task_id, 2));
    assert_eq!(store.heartbeat(&old.lease, LEASE_MS, expired + 2, 0, 0.0).await.unwrap(), LeaseState::Lost);
    assert_eq!(store.complete_task(&old.lease, done_for(&old, 1.0), expired + 3).await.unwrap(), Completion::Lost);
    assert_eq!(store.fail_task(&old.lease, "w1", "boom", 3, expired + 3).await.unwrap(), FailOutcome::Lost);
    let read = job(store.as_ref(), id).await;
    assert_eq!((read.frames_done, read.frames_rendering), (0, 3), "the old attempt changed nothing");
    assert!(store.list_outputs(id).await.unwrap().is_empty());
    assert!(store.job_failures_by_worker(id).await.unwrap().is_empty());

    assert_eq!(store.heartbeat(&new.lease, LEASE_MS, expired + 4, 0, 0.0).await.unwrap(), LeaseState::Held);
    assert_eq!(
        store.complete_task(&new.lease, done_for(&new, 1.0), expired + 5).await.unwrap(),
        Completion::JobFinished
    );
    let read = job(store.as_ref(), id).await;
    assert_eq!((read.status, read.frames_done), (JobStatus::Finalizing, 3));
});

dbtest!(a_failed_task_is_requeued_until_enough_different_workers_failed_it, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let id = booting_job(store.as_ref(), alice, 3, 2, T0).await;
    let other = claim(store.as_ref(), "w9", T0).await.unwrap();
    let mut now = T0;
    // w1 fails it twice: one worker, so it goes back to the queue each time.
    for (worker, failures) in [("w1", 1), ("w1", 2)] {
        now += 10;
        let task = claim(store.as_ref(), worker, now).await.unwrap();
        assert_eq!(task.frames.frames(), [3, 4]);
        let outcome = store.fail_task(&task.lease, worker, &format!("crash {failures}"), 2, now).await.unwrap();
        assert_eq!(outcome, FailOutcome::Requeued);
        let read = store.get_task(task.lease.task_id).await.unwrap().unwrap();
        assert_eq!((read.status, read.failures, read.worker_id), (TaskStatus::Queued, failures, None));
        assert_eq!(read.last_error.as_deref(), Some(format!("crash {failures}").as_str()));
        assert_eq!(store.fail_task(&task.lease, worker, "again", 2, now).await.unwrap(), FailOutcome::Lost);
    }
    let read = job(store.as_ref(), id).await;
    assert_eq!((read.status, read.frames_rendering, read.frames_failed), (JobStatus::Rendering, 2, 0));
    assert_eq!(store.job_failures_by_worker(id).await.unwrap(), [("w1".to_string(), 2)]);
    assert_eq!(store.last_job_failure(id).await.unwrap().as_deref(), Some("crash 2"));

    // A second worker fails it: the task and its job fail, and the job's other tasks stop.
    let task = claim(store.as_ref(), "w2", now + 10).await.unwrap();
    let outcome = store.fail_task(&task.lease, "w2", "out of memory", 2, now + 10).await.unwrap();
    assert_eq!(outcome, FailOutcome::JobFailed);
    let read = job(store.as_ref(), id).await;
    assert_eq!((read.status, read.frames_rendering, read.frames_failed), (JobStatus::Failed, 0, 2));
    let reason = read.failed_reason.expect("failed reason");
    assert_eq!((reason.name.as_str(), reason.kind.as_str()), ("task_failed", "render"));
    assert!(reason.message.contains("3-4") && reason.message.contains("out of memory"), "{}", reason.message);
    let statuses: Vec<_> = store.list_tasks(id).await.unwrap().iter().map(|it| it.status).collect();
    assert_eq!(statuses, [TaskStatus::Canceled, TaskStatus::Failed, TaskStatus::Canceled]);
    let mut by_worker = store.job_failures_by_worker(id).await.unwrap();
    by_worker.sort();
    assert_eq!(by_worker, [("w1".to_string(), 2), ("w2".to_string(), 1)]);
    assert_eq!(store.last_job_failure(id).await.unwrap().as_deref(), Some("out of memory"));

    assert_eq!(store.heartbeat(&other.lease, LEASE_MS, now + 20, 0, 0.0).await.unwrap(), LeaseState::Lost);
    assert_eq!(store.complete_task(&other.lease, done_for(&other, 1.0), now + 20).await.unwrap(), Completion::Lost);
    assert!(claim(store.as_ref(), "w3", now + 30).await.is_none());
});

dbtest!(a_canceled_job_cancels_its_tasks_and_fences_its_workers, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let id = booting_job(store.as_ref(), alice, 3, 1, T0).await;
    let running = claim(store.as_ref(), "w1", T0).await.unwrap();
    let done = claim(store.as_ref(), "w2", T0).await.unwrap();
    assert_eq!(store.complete_task(&done.lease, done_for(&done, 1.0), T0 + 1).await.unwrap(), Completion::Completed);

    assert!(!store.cancel_job(id, JobStatus::Booting, T0 + 2).await.unwrap(), "the job is no longer booting");
    assert_eq!(store.heartbeat(&running.lease, LEASE_MS, T0 + 2, 0, 0.0).await.unwrap(), LeaseState::Held);
    assert!(store.cancel_job(id, JobStatus::Rendering, T0 + 3).await.unwrap());
    let read = job(store.as_ref(), id).await;
    assert_eq!((read.status, read.updated_at, read.frames_rendering), (JobStatus::Canceled, T0 + 3, 0));
    let statuses: Vec<_> = store.list_tasks(id).await.unwrap().iter().map(|it| it.status).collect();
    assert_eq!(statuses, [TaskStatus::Canceled, TaskStatus::Completed, TaskStatus::Canceled]);

    assert_eq!(store.heartbeat(&running.lease, LEASE_MS, T0 + 4, 0, 0.0).await.unwrap(), LeaseState::Lost);
    assert_eq!(store.complete_task(&running.lease, done_for(&running, 1.0), T0 + 4).await.unwrap(), Completion::Lost);
    assert_eq!(store.fail_task(&running.lease, "w1", "killed", 3, T0 + 4).await.unwrap(), FailOutcome::Lost);
    assert!(claim(store.as_ref(), "w3", T0 + 5).await.is_none());
    assert!(!store.cancel_job(id, JobStatus::Canceled, T0 + 6).await.unwrap(), "terminal");
    assert_eq!(job(store.as_ref(), id).await.updated_at, T0 + 3);

    let validated = validated_job(store.as_ref(), alice, T0).await;
    assert!(store.cancel_job(validated, JobStatus::Validated, T0 + 7).await.unwrap(), "before any task exists");
    assert_eq!(job(store.as_ref(), validated).await.status, JobStatus::Canceled);
});

dbtest!(a_claim_prefers_the_loaded_job_then_the_oldest_among_those_allowed, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let old = booting_job(store.as_ref(), alice, 2, 1, T0).await;
    let new = booting_job(store.as_ref(), alice, 2, 1, T0 + 100).await;
    let runnable = runnable_ids(store.as_ref(), 10).await;
    assert_eq!(runnable, [old, new], "oldest first");
    assert_eq!(runnable_ids(store.as_ref(), 1).await.len(), 1);

    let both = [old, new];
    let task = store.claim_task("w1", &both, at(None, T0)).await.unwrap().unwrap();
    assert_eq!(task.job_id, old);
    let task = store.claim_task("w1", &both, at(Some(new), T0)).await.unwrap().unwrap();
    assert_eq!(task.job_id, new, "the preferred job first");
    let task = store.claim_task("w1", &[new], at(None, T0)).await.unwrap().unwrap();
    assert_eq!(task.job_id, new, "only allowed jobs");
    assert!(store.claim_task("w1", &[new], at(None, T0)).await.unwrap().is_none());
    assert!(store.claim_task("w1", &[], at(None, T0)).await.unwrap().is_none());
    let runnable = runnable_ids(store.as_ref(), 10).await;
    assert_eq!(runnable, [old]);
});

dbtest!(a_completion_claims_the_workers_next_task_with_it, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let id = booting_job(store.as_ref(), alice, 3, 1, T0).await;
    let first = claim(store.as_ref(), "w1", T0).await.unwrap();
    let ids = [id];
    let next = NextClaim { worker_id: "w1", job_ids: &ids, claim: at(Some(id), T0 + 1) };
    let (completion, second) =
        store.complete_and_claim(&first.lease, done_for(&first, 1.0), T0 + 1, next).await.unwrap();
    let second = second.expect("the next task");
    assert_eq!((completion, second.job_id, second.seq), (Completion::Completed, id, 1));
    let task = store.get_task(second.lease.task_id).await.unwrap().unwrap();
    assert_eq!((task.status, task.worker_id.as_deref()), (TaskStatus::Running, Some("w1")));
    // A completion that lost its lease claims nothing.
    let (completion, none) = store.complete_and_claim(&first.lease, done_for(&first, 1.0), T0 + 2, next).await.unwrap();
    assert_eq!((completion, none.is_none()), (Completion::Lost, true));
    let (completion, third) =
        store.complete_and_claim(&second.lease, done_for(&second, 1.0), T0 + 3, next).await.unwrap();
    let third = third.expect("the last task");
    assert_eq!(completion, Completion::Completed);
    let (completion, none) = store.complete_and_claim(&third.lease, done_for(&third, 1.0), T0 + 4, next).await.unwrap();
    assert_eq!((completion, none.is_none()), (Completion::JobFinished, true), "nothing left to claim");
    assert_eq!(job(store.as_ref(), id).await.frames_done, 3);
});

dbtest!(a_claim_looks_for_the_preferred_jobs_task_from_the_position_it_is_given, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let id = booting_job(store.as_ref(), alice, 4, 1, T0).await;
    let other = booting_job(store.as_ref(), alice, 1, 1, T0 + 1).await;
    let both = [id, other];
    let first = store.claim_task("w1", &both, at(Some(id), T0)).await.unwrap().unwrap();
    assert_eq!((first.job_id, first.seq), (id, 0));
    // From position 2: task 1 (still queued) is passed over.
    let from_two = ClaimOptions { prefer_from_seq: 2, ..at(Some(id), T0) };
    let task = store.claim_task("w1", &both, from_two).await.unwrap().unwrap();
    assert_eq!((task.job_id, task.seq), (id, 2));
    let from_four = ClaimOptions { prefer_from_seq: 4, ..at(Some(id), T0) };
    let task = store.claim_task("w1", &both, from_four).await.unwrap().unwrap();
    assert_eq!(task.job_id, other, "nothing past 4 in the preferred job: the next job's task");
    // From the start again, the task passed over.
    let task = store.claim_task("w1", &both, at(Some(id), T0)).await.unwrap().unwrap();
    assert_eq!((task.job_id, task.seq), (id, 1));
});

dbtest!(a_waiting_reason_is_set_and_cleared, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let id = booting_job(store.as_ref(), alice, 1, 1, T0).await;
    assert_eq!(job(store.as_ref(), id).await.waiting_reason, None);
    store.set_waiting_reason(id, Some("no worker has Blender 4.2")).await.unwrap();
    store.set_waiting_reason(id, Some("no worker has Blender 4.2")).await.unwrap();
    assert_eq!(job(store.as_ref(), id).await.waiting_reason.as_deref(), Some("no worker has Blender 4.2"));
    store.set_waiting_reason(id, None).await.unwrap();
    assert_eq!(job(store.as_ref(), id).await.waiting_reason, None);
});

dbtest!(a_worker_is_blocklisted_for_a_job_after_three_failed_attempts, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let id = booting_job(store.as_ref(), alice, 1, 1, T0).await;
    for attempt in 1..=3 {
        // Until its third failure, w1 claims the task again.
        let task = claim(store.as_ref(), "w1", T0 + attempt).await.expect("a task");
        assert_eq!(task.lease.attempt, attempt);
        let outcome = store.fail_task(&task.lease, "w1", "boom", 10, T0 + attempt).await.unwrap();
        assert_eq!(outcome, FailOutcome::Requeued);
    }
    // Claims pass over the job for w1 only; w1 still gets other jobs' tasks.
    assert!(claim(store.as_ref(), "w1", T0 + 10).await.is_none(), "w1 is blocklisted");
    // The threshold is the claim's: with 4, three failures do not blocklist.
    let lenient = ClaimOptions { blocklist_after: 4, ..at(None, T0 + 10) };
    let task = store.claim_task("w1", &[id], lenient).await.unwrap().expect("not blocklisted below 4");
    assert_eq!(store.fail_task(&task.lease, "w1", "boom", 10, T0 + 10).await.unwrap(), FailOutcome::Requeued);
    assert!(store.claim_task("w1", &[id], lenient).await.unwrap().is_none(), "blocklisted at 4");
    let other = booting_job(store.as_ref(), alice, 1, 1, T0 + 10).await;
    assert_eq!(claim(store.as_ref(), "w1", T0 + 11).await.map(|it| it.job_id), Some(other));
    assert_eq!(claim(store.as_ref(), "w2", T0 + 12).await.map(|it| it.job_id), Some(id));
});

dbtest!(queued_tasks_regroup_into_bigger_chunks_and_keep_every_frame_once, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let id = booting_job(store.as_ref(), alice, 6, 1, T0).await;
    let first = claim(store.as_ref(), "w1", T0 + 1).await.expect("a task");
    assert_eq!(store.rechunk_queued(id, 2).await.unwrap(), 3, "frames 2-6 in tasks of 2");
    let tasks = store.list_tasks(id).await.unwrap();
    let queued: Vec<Vec<i32>> =
        tasks.iter().filter(|it| it.status == TaskStatus::Queued).map(|it| it.frames.frames().to_vec()).collect();
    assert_eq!(queued, [vec![2, 3], vec![4, 5], vec![6]]);
    assert_eq!(tasks.iter().filter(|it| it.status == TaskStatus::Running).count(), 1, "the claimed task stays");
    assert_eq!(job(store.as_ref(), id).await.frames_total, 6);
    // Smaller chunks than now: nothing changes.
    assert_eq!(store.rechunk_queued(id, 1).await.unwrap(), 3);
    assert_eq!(store.list_tasks(id).await.unwrap().len(), 4);
    assert_eq!(store.heartbeat(&first.lease, LEASE_MS, T0 + 2, 0, 0.0).await.unwrap(), LeaseState::Held);
});

dbtest!(a_task_whose_frames_do_not_decode_is_corrupt, |store, db| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let id = booting_job(store.as_ref(), alice, 2, 1, T0).await;
    db.execute(&format!("update tasks set frames = '\"1-2\"' where job_id = '{id}' and seq = 1")).await;
    match store.list_tasks(id).await.unwrap_err() {
        StoreError::Corrupt { table, column, source } => {
            assert_eq!((table, column), ("tasks", "frames"));
            assert!(source.downcast_ref::<serde_json::Error>().is_some(), "{source:?}");
        }
        other => panic!("not a corrupt row: {other:?}"),
    }
    // A claim of that task reports it, rather than a task with no frames.
    let first = claim(store.as_ref(), "w1", T0).await.expect("the first task decodes");
    assert_eq!(first.seq, 0);
    let ids = [id];
    let error = store.claim_task("w2", &ids, at(None, T0)).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { table: "tasks", column: "frames", .. }), "{error:?}");
});

dbtest!(runnable_jobs_come_by_priority_then_age_with_their_workspace_share, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let bob = owner(store.as_ref(), "rival", "bob").await;
    let old = booting_job(store.as_ref(), alice, 1, 1, T0).await;
    let new = booting_job(store.as_ref(), bob, 1, 1, T0 + 100).await;
    assert_eq!(runnable_ids(store.as_ref(), 10).await, [old, new], "equal priority: oldest first");
    assert!(store.set_priority(new, 80, T0 + 200).await.unwrap());
    assert!(store.set_share("rival", 3.0).await.unwrap());
    assert!(!store.set_share("nobody", 2.0).await.unwrap());
    let runnable = store.runnable_jobs(10).await.unwrap();
    assert_eq!(runnable.iter().map(|it| it.id).collect::<Vec<_>>(), [new, old], "higher priority first");
    assert_eq!((runnable[0].priority, runnable[0].share, runnable[0].workspace_id), (80, 3.0, bob.workspace_id));
    assert_eq!((runnable[1].priority, runnable[1].share), (50, 1.0), "the defaults");
    assert_eq!(job(store.as_ref(), new).await.priority, 80);
});

dbtest!(requeuing_a_jobs_running_tasks_takes_their_leases, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let id = booting_job(store.as_ref(), alice, 2, 1, T0).await;
    let task = claim(store.as_ref(), "w1", T0).await.unwrap();
    assert_eq!(store.requeue_running(id).await.unwrap(), 1);
    assert_eq!(store.heartbeat(&task.lease, LEASE_MS, T0 + 1, 0, 0.0).await.unwrap(), LeaseState::Lost);
    // The task is claimed again, as a new attempt; the old one can no longer complete it.
    let again = claim(store.as_ref(), "w2", T0 + 2).await.unwrap();
    assert_eq!((again.lease.task_id, again.lease.attempt), (task.lease.task_id, task.lease.attempt + 1));
    let late = store.complete_task(&task.lease, done_for(&task, 1.0), T0 + 3).await.unwrap();
    assert_eq!(late, Completion::Lost);
});

dbtest!(a_finished_job_is_deleted_with_everything_it_recorded, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let id = booting_job(store.as_ref(), alice, 1, 2, T0).await;
    let kept = booting_job(store.as_ref(), alice, 1, 1, T0 + 1).await;
    assert!(!store.delete_job(id).await.unwrap(), "a job that still renders is not deleted");
    let task = claim(store.as_ref(), "w1", T0).await.unwrap();
    assert_eq!(task.job_id, id);
    assert!(store.append_task_log(&task.lease, "w1", "Fra:1\n", 100, T0 + 5).await.unwrap());
    store.complete_task(&task.lease, done_for(&task, 1.0), T0 + 10).await.unwrap();
    let read = job(store.as_ref(), id).await;
    assert!(store.cancel_job(id, read.status, T0 + 20).await.unwrap());
    let (_, before) = store.list_jobs(alice.workspace_id, &[], 1, 10).await.unwrap();
    assert!(store.delete_job(id).await.unwrap());
    assert!(store.get_job_internal(id).await.unwrap().is_none());
    assert!(store.list_outputs(id).await.unwrap().is_empty());
    assert!(store.list_tasks(id).await.unwrap().is_empty());
    assert_eq!(store.task_log(task.lease.task_id, None).await.unwrap(), None);
    let (jobs, after) = store.list_jobs(alice.workspace_id, &[], 1, 10).await.unwrap();
    assert_eq!((after, jobs.len()), (before - 1, 1), "the workspace's count follows");
    assert_eq!(jobs[0].id, kept);
    assert!(!store.delete_job(id).await.unwrap(), "twice is nothing");
});

dbtest!(a_completed_task_records_the_blender_that_rendered_it, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let id = booting_job(store.as_ref(), alice, 2, 1, T0).await;
    let task = claim(store.as_ref(), "w1", T0).await.unwrap();
    store.complete_task(&task.lease, done_for(&task, 1.0), T0 + 10).await.unwrap();
    let tasks = store.list_tasks(id).await.unwrap();
    let versions: Vec<Option<&str>> = tasks.iter().map(|it| it.blender_version.as_deref()).collect();
    assert_eq!(versions, [Some("4.5.3"), None], "the completed task has it, the queued one not yet");
    assert_eq!((tasks[0].render_seconds, tasks[0].finished_at), (Some(1.0), Some(T0 + 10)));
});

dbtest!(an_attempts_log_grows_while_it_runs_and_keeps_its_tail, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let id = booting_job(store.as_ref(), alice, 1, 4, T0).await;
    let first = claim(store.as_ref(), "w1", T0).await.unwrap();
    assert_eq!(store.task_log(first.lease.task_id, None).await.unwrap(), None, "nothing printed yet");
    assert!(store.append_task_log(&first.lease, "w1", "Read blend\n", 20, T0 + 1).await.unwrap());
    assert!(!store.append_task_log(&first.lease, "w2", "not mine\n", 20, T0 + 1).await.unwrap(), "fenced by worker");
    // Characters, not bytes: "é" is one.
    assert!(store.append_task_log(&first.lease, "w1", "Fra:1 é Sample 1/8\n", 20, T0 + 2).await.unwrap());
    let log = store.task_log(first.lease.task_id, None).await.unwrap().expect("a log");
    assert_eq!((log.attempt, log.worker_id.as_str(), log.updated_at), (1, "w1", T0 + 2));
    assert_eq!((log.text.as_str(), log.truncated), ("\nFra:1 é Sample 1/8\n", true), "the last 20 characters");
    assert_eq!(log.text.chars().count(), 20);

    // Progress within the task: two frames done, the third half-way.
    assert_eq!(store.heartbeat(&first.lease, LEASE_MS, T0 + 3, 2, 0.5).await.unwrap(), LeaseState::Held);
    let read = job(store.as_ref(), id).await;
    assert_eq!((read.frames_running_done, read.frames_running_progress), (2, 2.5));
    let task = store.get_task(first.lease.task_id).await.unwrap().unwrap();
    assert_eq!((task.frames_done, task.frame_progress), (2, 0.5));

    // The attempt fails; the next attempt has a log of its own, and the first keeps its own.
    store.fail_task(&first.lease, "w1", "crashed", 3, T0 + 4).await.unwrap();
    assert!(!store.append_task_log(&first.lease, "w1", "late\n", 20, T0 + 5).await.unwrap(), "fenced by attempt");
    let second = claim(store.as_ref(), "w2", T0 + 6).await.unwrap();
    assert_eq!(second.lease.task_id, first.lease.task_id);
    let task = store.get_task(first.lease.task_id).await.unwrap().unwrap();
    assert_eq!((task.frames_done, task.frame_progress), (0, 0.0), "a new attempt starts from nothing");
    assert!(store.append_task_log(&second.lease, "w2", "again\n", 20, T0 + 7).await.unwrap());
    let latest = store.task_log(first.lease.task_id, None).await.unwrap().unwrap();
    assert_eq!((latest.attempt, latest.text.as_str(), latest.truncated), (2, "again\n", false));
    let earlier = store.task_log(first.lease.task_id, Some(1)).await.unwrap().unwrap();
    assert_eq!(earlier.text, log.text);
    assert_eq!(store.task_log(first.lease.task_id, Some(9)).await.unwrap(), None);
    // A chunk bigger than the cap on its own keeps its tail too.
    let third_chunk = "x".repeat(30);
    assert!(store.append_task_log(&second.lease, "w2", &third_chunk, 20, T0 + 8).await.unwrap());
    let latest = store.task_log(first.lease.task_id, None).await.unwrap().unwrap();
    assert_eq!((latest.text.len(), latest.truncated), (20, true));
});

dbtest!(usage_sums_each_workspaces_jobs_and_the_frames_finished_lately, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let bob = owner(store.as_ref(), "other", "bob").await;
    let studio = alice.workspace_id;
    let id = booting_job(store.as_ref(), alice, 2, 2, T0).await;
    booting_job(store.as_ref(), bob, 1, 1, T0).await;
    for at in [T0 + 10, T0 + 1_000] {
        let task = store.claim_task("w1", &[id], crate::fixtures::at(None, at)).await.unwrap().expect("a task");
        store.complete_task(&task.lease, done_for(&task, 2.0), at + 1).await.unwrap();
    }
    let (all, lately) = store.usage(None, T0 + 500).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!((all[0].workspace_id, all[0].jobs, all[0].frames_done), (studio, 1, 4));
    assert!((all[0].normalized_seconds - 4.0).abs() < 1e-9, "{all:?}");
    assert_eq!((all[1].jobs, all[1].frames_done, all[1].normalized_seconds), (1, 0, 0.0));
    assert_eq!(lately, 2, "the second task's frames only");
    let (own, lately) = store.usage(Some(bob_workspace(&all, studio)), T0).await.unwrap();
    assert_eq!((own.len(), lately), (1, 0), "another workspace's frames are not counted");
});

/// The workspace of `usage` that is not `studio`.
fn bob_workspace(usage: &[orchard_store::WorkspaceUsage], studio: uuid::Uuid) -> uuid::Uuid {
    usage.iter().map(|it| it.workspace_id).find(|it| *it != studio).expect("two workspaces")
}
