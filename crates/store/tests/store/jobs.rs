//! Uploads, jobs, listing and status transitions.

use std::sync::Arc;

use orchard_domain::JobStatus;
use orchard_store::{FailedReason, JobPatch, NewJob, Order, StoreError};
use uuid::Uuid;

use crate::fixtures::{T0, analysis, booting_job, created_job, job, owner, uploaded, validated_job};

dbtest!(an_upload_is_recorded_then_receives_its_bytes, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let upload = uploaded(store.as_ref(), alice, T0).await;
    assert_eq!(upload.workspace_id, alice.workspace_id);
    assert_eq!(upload.user_id, alice.user_id);
    assert_eq!((upload.file_name.as_str(), upload.file_type.as_str()), ("shot.blend", "blend"));
    assert_eq!(upload.expires_at, T0 + 3_600_000);
    assert_eq!((upload.uploaded_at, upload.size), (Some(T0), Some(1234)));
    assert_eq!(upload.sha256.as_deref(), Some("ab".repeat(32).as_str()));
    assert_eq!(upload.parts, None, "one PUT");
    let in_parts = orchard_store::Upload { slug: "in-parts".into(), parts: Some(3), ..upload.clone() };
    store.insert_upload(&in_parts).await.unwrap();
    assert_eq!(store.get_upload("in-parts").await.unwrap().unwrap().parts, Some(3), "the declared parts are kept");
    assert!(store.get_upload("no-such-slug").await.unwrap().is_none());
    assert!(!store.upload_has_job(&upload.slug).await.unwrap());

    let (made, inserted) =
        store.create_job(NewJob { id: Uuid::now_v7(), upload: upload.clone(), main_file: None }, T0).await.unwrap();
    assert!(inserted);
    assert!(store.upload_has_job(&upload.slug).await.unwrap());
    assert_eq!(made.status, JobStatus::Created);
    assert_eq!((made.file_size, made.object_key.as_str()), (1234, upload.object_key.as_str()));
    assert_eq!((made.created_at, made.updated_at), (T0, T0));
    assert_eq!((made.frames_total, made.frames_done, made.normalized_seconds), (0, 0, 0.0));
});

dbtest!(one_upload_makes_one_job_even_when_asked_concurrently, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let upload = uploaded(store.as_ref(), alice, T0).await;
    let first = Uuid::now_v7();
    let (made, inserted) = store
        .create_job(NewJob { id: first, upload: upload.clone(), main_file: Some("main.blend".into()) }, T0)
        .await
        .unwrap();
    assert!(inserted);
    assert_eq!((made.id, made.main_file.as_deref()), (first, Some("main.blend")));
    let (again, inserted) =
        store.create_job(NewJob { id: Uuid::now_v7(), upload, main_file: None }, T0 + 5).await.unwrap();
    assert!(!inserted, "a repeat is a replay");
    assert_eq!((again.id, again.created_at), (first, T0));

    // Eight requests for a fresh upload at once: one job, and all of them see it.
    let upload = uploaded(store.as_ref(), alice, T0).await;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (store, upload) = (store.clone(), upload.clone());
        set.spawn(async move {
            store.create_job(NewJob { id: Uuid::now_v7(), upload, main_file: None }, T0).await.unwrap()
        });
    }
    let results = set.join_all().await;
    assert_eq!(results.iter().filter(|(_, inserted)| *inserted).count(), 1);
    assert!(results.iter().all(|(it, _)| it.id == results[0].0.id));
    let (_, total) = store.list_jobs(alice.workspace_id, &[], 1, 10).await.unwrap();
    assert_eq!(total, 2, "replays count no job");
});

dbtest!(jobs_are_listed_newest_first_in_pages_and_filtered_by_status, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let rival = owner(store.as_ref(), "rival", "bob").await;
    let mut ids = Vec::new();
    for idx in 0..5 {
        ids.push(created_job(store.as_ref(), alice, T0 + idx).await);
    }
    created_job(store.as_ref(), rival, T0 + 100).await;
    let validated = validated_job(store.as_ref(), alice, T0 + 50).await;
    ids.push(validated);
    ids.reverse();

    let (page, total) = store.list_jobs(alice.workspace_id, &[], 1, 4).await.unwrap();
    assert_eq!(total, 6);
    assert_eq!(page.iter().map(|it| it.id).collect::<Vec<_>>(), ids[..4]);
    let (page, total) = store.list_jobs(alice.workspace_id, &[], 2, 4).await.unwrap();
    assert_eq!(total, 6);
    assert_eq!(page.iter().map(|it| it.id).collect::<Vec<_>>(), ids[4..]);
    let (page, _) = store.list_jobs(alice.workspace_id, &[], 3, 4).await.unwrap();
    assert!(page.is_empty());

    let (page, total) = store.list_jobs(alice.workspace_id, &[JobStatus::Validated], 1, 10).await.unwrap();
    assert_eq!((total, page.len(), page[0].id), (1, 1, validated));
    let (page, total) =
        store.list_jobs(alice.workspace_id, &[JobStatus::Created, JobStatus::Validated], 1, 10).await.unwrap();
    assert_eq!((total, page.len()), (6, 6));
    let (page, total) = store.list_jobs(alice.workspace_id, &[JobStatus::Rendering], 1, 10).await.unwrap();
    assert_eq!((total, page.len()), (0, 0));

    let in_status = store.jobs_in_status(None, &[JobStatus::Created], Order::NewestFirst, 100).await.unwrap();
    assert_eq!(in_status.len(), 6, "every workspace");
    let in_status =
        store.jobs_in_status(Some(alice.workspace_id), &[JobStatus::Created], Order::NewestFirst, 100).await.unwrap();
    assert_eq!(in_status.len(), 5);
    assert_eq!(in_status[0].id, ids[1], "newest first");
    let in_status =
        store.jobs_in_status(Some(alice.workspace_id), &[JobStatus::Created], Order::NewestFirst, 2).await.unwrap();
    assert_eq!(in_status.len(), 2, "at most limit");
    let oldest =
        store.jobs_in_status(Some(alice.workspace_id), &[JobStatus::Created], Order::OldestFirst, 2).await.unwrap();
    assert_eq!(oldest.iter().map(|it| it.id).collect::<Vec<_>>(), [ids[5], ids[4]], "oldest first");
    assert!(store.jobs_in_status(None, &[], Order::NewestFirst, 10).await.unwrap().is_empty());
});

dbtest!(a_job_is_only_visible_to_its_workspace, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let rival = owner(store.as_ref(), "rival", "bob").await;
    let id = created_job(store.as_ref(), alice, T0).await;
    assert_eq!(store.get_job(alice.workspace_id, id).await.unwrap().map(|it| it.id), Some(id));
    assert!(store.get_job(rival.workspace_id, id).await.unwrap().is_none());
    assert!(store.get_job(alice.workspace_id, Uuid::now_v7()).await.unwrap().is_none());
    assert_eq!(store.get_job_internal(id).await.unwrap().map(|it| it.id), Some(id));
});

dbtest!(a_transition_is_a_compare_and_set_on_the_status_read, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let id = created_job(store.as_ref(), alice, T0).await;
    let analysis_id = Uuid::now_v7();
    let patch = JobPatch { analysis: Some((analysis_id, analysis(analysis_id, "cas.blend"))), ..JobPatch::default() };
    assert!(!store.transition_job(id, JobStatus::Validating, JobStatus::Validated, patch.clone(), T0).await.unwrap());
    assert_eq!(job(store.as_ref(), id).await.analysis, None, "a refused transition changes nothing");

    assert!(
        store.transition_job(id, JobStatus::Created, JobStatus::Validating, JobPatch::default(), T0 + 1).await.unwrap()
    );
    assert!(store.transition_job(id, JobStatus::Validating, JobStatus::Validated, patch, T0 + 2).await.unwrap());
    let read = job(store.as_ref(), id).await;
    assert_eq!((read.status, read.updated_at), (JobStatus::Validated, T0 + 2));
    assert_eq!(
        (read.analysis_id, read.analysis),
        (Some(analysis_id), Some(Arc::new(analysis(analysis_id, "cas.blend"))))
    );

    // Eight concurrent attempts to fail it: exactly one moves it.
    let mut set = tokio::task::JoinSet::new();
    for idx in 0..8 {
        let store = store.clone();
        set.spawn(async move {
            let reason = FailedReason { name: format!("n{idx}"), kind: "internal".into(), message: "m".into() };
            let patch = JobPatch { failed_reason: Some(reason), ..JobPatch::default() };
            store.transition_job(id, JobStatus::Validated, JobStatus::Failed, patch, T0 + 3).await.unwrap()
        });
    }
    assert_eq!(set.join_all().await.into_iter().filter(|it| *it).count(), 1);
    let read = job(store.as_ref(), id).await;
    assert_eq!(read.status, JobStatus::Failed);
    let reason = read.failed_reason.expect("failed reason");
    assert!(reason.name.starts_with('n') && reason.kind == "internal", "{reason:?}");
    assert_eq!(read.analysis_id, Some(analysis_id), "columns not in the patch are kept");

    store.set_preview(id, "jobs/x/preview.png", T0 + 4).await.unwrap();
    let patch = JobPatch { preview_key: Some("jobs/x/other.png".into()), ..JobPatch::default() };
    assert!(!store.transition_job(id, JobStatus::Finalizing, JobStatus::Completed, patch, T0 + 5).await.unwrap());
    let read = job(store.as_ref(), id).await;
    assert_eq!(read.preview_key.as_deref(), Some("jobs/x/preview.png"), "a refused transition writes nothing");
});

dbtest!(an_analysis_is_decoded_once_and_read_back_by_a_store_that_did_not_write_it, |store, db| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let id = validated_job(store.as_ref(), alice, T0).await;
    let first = job(store.as_ref(), id).await;
    let analysis_id = first.analysis_id.expect("an analysis id");
    let kept = first.analysis.expect("an analysis");
    assert_eq!(*kept, analysis(analysis_id, "shot.blend"));
    let again = job(store.as_ref(), id).await.analysis.expect("an analysis");
    assert!(Arc::ptr_eq(&kept, &again), "reads share the analysis decoded once");

    // Another server has nothing kept: it reads the analysis, then keeps it.
    let other = db.another_store().await;
    let read = other.get_job(alice.workspace_id, id).await.unwrap().expect("the job");
    let read = read.analysis.expect("an analysis");
    assert_eq!(read, kept);
    let (listed, _) = other.list_jobs(alice.workspace_id, &[], 1, 10).await.unwrap();
    assert!(Arc::ptr_eq(listed[0].analysis.as_ref().expect("an analysis"), &read));

    // Jobs listed together, analysed or not, by a store that has nothing kept.
    let created = created_job(store.as_ref(), alice, T0 + 1).await;
    let second = validated_job(store.as_ref(), alice, T0 + 2).await;
    let third = db.another_store().await;
    let statuses = [JobStatus::Created, JobStatus::Validated];
    let jobs = third.jobs_in_status(Some(alice.workspace_id), &statuses, Order::NewestFirst, 10).await.unwrap();
    let analysed: Vec<_> =
        jobs.iter().map(|it| (it.id, it.analysis.as_ref().map(|a| (a.id.clone(), a.file_name.clone())))).collect();
    let second_analysis = job(store.as_ref(), second).await.analysis_id.expect("an analysis id");
    assert_eq!(
        analysed,
        [
            (second, Some((Some(second_analysis.to_string()), "shot.blend".to_string()))),
            (created, None),
            (id, Some((Some(analysis_id.to_string()), "shot.blend".to_string()))),
        ]
    );
});

/// The table, column and cause of a [`StoreError::Corrupt`].
fn corrupt(error: StoreError) -> (&'static str, &'static str, Box<dyn std::error::Error + Send + Sync>) {
    match error {
        StoreError::Corrupt { table, column, source } => (table, column, source),
        other => panic!("not a corrupt row: {other:?}"),
    }
}

dbtest!(a_job_row_that_does_not_decode_is_corrupt_never_a_default, |store, db| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let id = booting_job(store.as_ref(), alice, 1, 1, T0).await;

    // An analysis is read once per store: a store that has none kept reads the bad one.
    db.execute(&format!("update jobs set analysis = '{{\"fileName\": 7}}' where id = '{id}'")).await;
    let error = db.another_store().await.get_job_internal(id).await.unwrap_err();
    assert_eq!(error.to_string(), "corrupt value in jobs.analysis");
    let (table, column, source) = corrupt(error);
    assert_eq!((table, column), ("jobs", "analysis"));
    assert!(source.downcast_ref::<serde_json::Error>().is_some(), "{source:?}");

    for (column, value) in
        [("final_config", "'{\"renderEngine\": 4}'"), ("requested_config", "'[1, 2]'"), ("analysis_id", "'not-a-uuid'")]
    {
        let id = booting_job(store.as_ref(), alice, 1, 1, T0).await;
        db.execute(&format!("update jobs set {column} = {value} where id = '{id}'")).await;
        let (table, read_column, source) = corrupt(store.get_job(alice.workspace_id, id).await.unwrap_err());
        assert_eq!((table, read_column), ("jobs", column), "{source}");
        let (_, listed_column, _) = corrupt(store.list_jobs(alice.workspace_id, &[], 1, 100).await.unwrap_err());
        assert_eq!(listed_column, column, "a listing does not skip it");
        let direct = store.jobs_in_status(None, &[JobStatus::Booting], Order::OldestFirst, 100).await.unwrap_err();
        assert_eq!(corrupt(direct).1, column);
        db.execute(&format!("delete from tasks where job_id = '{id}'")).await;
        db.execute(&format!("delete from jobs where id = '{id}'")).await;
    }

    // A failed reason is written whole: a part missing is not an empty string.
    db.execute(&format!("update jobs set failed_name = 'task_failed', failed_type = null where id = '{id}'")).await;
    let (table, column, source) = corrupt(store.get_job_internal(id).await.unwrap_err());
    assert_eq!((table, column), ("jobs", "failed_type"));
    assert_eq!(source.to_string(), "missing, although failed_name is set");
});

dbtest!(a_remembered_job_read_never_hides_a_write, |store, db| {
    let cached = db.cached_store().await;
    let alice = owner(cached.as_ref(), "studio", "alice").await;
    let id = booting_job(cached.as_ref(), alice, 3, 1, T0).await;
    let read = |store: Arc<dyn orchard_store::Store>| async move {
        store.get_job(alice.workspace_id, id).await.unwrap().expect("the job exists")
    };
    assert_eq!(read(cached.clone()).await.frames_rendering, 0);
    assert_eq!(read(cached.clone()).await.frames_rendering, 0, "read again: the same");

    // A claim through the remembering store is seen at once.
    crate::fixtures::claim(cached.as_ref(), "w1", T0).await.expect("a task");
    assert_eq!(read(cached.clone()).await.frames_rendering, 1);
    let canceled = cached.cancel_job(id, read(cached.clone()).await.status, T0).await.unwrap();
    assert!(canceled);
    assert_eq!(read(cached.clone()).await.status, JobStatus::Canceled, "a status change is seen at once");

    // Another server's write (through another store on the database) is seen once the
    // memory lapses.
    let other = created_job(store.as_ref(), alice, T0).await;
    let first = read_other(&cached, alice.workspace_id, other).await;
    assert_eq!(first.status, JobStatus::Created);
    let validating = JobStatus::Created.apply(orchard_domain::JobEvent::ValidationStarted).unwrap();
    assert!(store.transition_job(other, JobStatus::Created, validating, JobPatch::default(), T0).await.unwrap());
    let deadline = std::time::Instant::now() + orchard_store::JOB_MEMORY * 40;
    loop {
        if read_other(&cached, alice.workspace_id, other).await.status == validating {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "another server's change was never seen");
        tokio::time::sleep(orchard_store::JOB_MEMORY / 5).await;
    }
});

async fn read_other(store: &Arc<dyn orchard_store::Store>, workspace_id: Uuid, id: Uuid) -> orchard_store::Job {
    store.get_job(workspace_id, id).await.unwrap().expect("the job exists")
}

dbtest!(a_validation_whose_owner_died_is_taken_over_once, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let abandoned = created_job(store.as_ref(), alice, T0).await;
    let running = created_job(store.as_ref(), alice, T0 + 1).await;
    let validating = JobStatus::Created.apply(orchard_domain::JobEvent::ValidationStarted).unwrap();
    let lease = |until| JobPatch { validating_until: Some(until), ..JobPatch::default() };
    assert!(store.transition_job(abandoned, JobStatus::Created, validating, lease(T0 + 1000), T0).await.unwrap());
    assert!(store.transition_job(running, JobStatus::Created, validating, lease(T0 + 9000), T0).await.unwrap());

    assert!(store.take_stale_validation(T0 + 500, T0 + 10_000).await.unwrap().is_none(), "both still owned");
    let taken = store.take_stale_validation(T0 + 2000, T0 + 10_000).await.unwrap().expect("the abandoned one");
    assert_eq!((taken.id, taken.status), (abandoned, JobStatus::Validating));
    assert!(store.take_stale_validation(T0 + 2000, T0 + 10_000).await.unwrap().is_none(), "taken once");
    // Leaving validating ends the ownership: a job validated is never taken.
    let done = validating.apply(orchard_domain::JobEvent::ValidationSucceeded).unwrap();
    assert!(store.transition_job(abandoned, validating, done, JobPatch::default(), T0).await.unwrap());
    let taken = store.take_stale_validation(T0 + 20_000, T0 + 30_000).await.unwrap().expect("the other, lapsed");
    assert_eq!(taken.id, running);
    assert!(store.take_stale_validation(T0 + 20_000, T0 + 30_000).await.unwrap().is_none());
});
