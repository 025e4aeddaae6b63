//! Uploads, jobs, listing and status transitions.

use orchard_domain::JobStatus;
use orchard_store::{FailedReason, JobPatch, NewJob, Order};
use serde_json::json;
use uuid::Uuid;

use crate::fixtures::{T0, created_job, job, owner, uploaded, validated_job};

dbtest!(an_upload_is_recorded_then_receives_its_bytes, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let upload = uploaded(store.as_ref(), alice, T0).await;
    assert_eq!(upload.workspace_id, alice.workspace_id);
    assert_eq!(upload.user_id, alice.user_id);
    assert_eq!((upload.file_name.as_str(), upload.file_type.as_str()), ("shot.blend", "blend"));
    assert_eq!(upload.expires_at, T0 + 3_600_000);
    assert_eq!((upload.uploaded_at, upload.size), (Some(T0), Some(1234)));
    assert_eq!(upload.sha256.as_deref(), Some("ab".repeat(32).as_str()));
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
    let patch = JobPatch { analysis: Some((analysis_id, json!({"frames": 4}))), ..JobPatch::default() };
    assert!(!store.transition_job(id, JobStatus::Validating, JobStatus::Validated, patch.clone(), T0).await.unwrap());
    assert_eq!(job(store.as_ref(), id).await.analysis, None, "a refused transition changes nothing");

    assert!(
        store.transition_job(id, JobStatus::Created, JobStatus::Validating, JobPatch::default(), T0 + 1).await.unwrap()
    );
    assert!(store.transition_job(id, JobStatus::Validating, JobStatus::Validated, patch, T0 + 2).await.unwrap());
    let read = job(store.as_ref(), id).await;
    assert_eq!((read.status, read.updated_at), (JobStatus::Validated, T0 + 2));
    assert_eq!((read.analysis_id, read.analysis), (Some(analysis_id), Some(json!({"frames": 4}))));

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
    let patch = JobPatch { frames_zip_key: Some("jobs/x/frames.zip".into()), ..JobPatch::default() };
    assert!(!store.transition_job(id, JobStatus::Finalizing, JobStatus::Completed, patch, T0 + 5).await.unwrap());
    let read = job(store.as_ref(), id).await;
    assert_eq!((read.preview_key.as_deref(), read.frames_zip_key), (Some("jobs/x/preview.png"), None));
});
