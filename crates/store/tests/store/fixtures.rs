//! Rows the tests build on: a key's owner, uploads, jobs in a given status.

use orchard_blend::Analysis;
use orchard_domain::{FrameSet, JobStatus, RenderConfig, RequestedConfig};
use orchard_store::{
    ClaimOptions, ClaimedTask, JobPatch, KeyOwner, NewJob, NewKey, NewOutput, StartRender, Store, TaskDone, Upload,
};
use serde_json::json;
use uuid::Uuid;

/// A time well after the epoch; tests move time by adding to it.
pub(crate) const T0: i64 = 1_800_000_000_000;

/// Lease length the tests claim with.
pub(crate) const LEASE_MS: i64 = 60_000;

/// Creates a key for `user` in `workspace` and returns its owner.
pub(crate) async fn owner(store: &dyn Store, workspace: &str, user: &str) -> KeyOwner {
    let new = NewKey {
        workspace_name: workspace.into(),
        user_name: user.into(),
        key_hash: format!("hash-of-{workspace}-{user}"),
        prefix: format!("RJ-{workspace}-{user}"),
        admin: false,
    };
    store.create_key(new, T0).await.expect("key created")
}

/// An upload of `owner` whose bytes arrived.
pub(crate) async fn uploaded(store: &dyn Store, owner: KeyOwner, now: i64) -> Upload {
    let slug = Uuid::new_v4().simple().to_string();
    let upload = Upload {
        slug: slug.clone(),
        workspace_id: owner.workspace_id,
        user_id: owner.user_id,
        file_name: "shot.blend".into(),
        file_type: "blend".into(),
        object_key: format!("uploads/{slug}"),
        expires_at: now + 3_600_000,
        created_at: now,
        uploaded_at: None,
        size: None,
        sha256: None,
        parts: None,
    };
    store.insert_upload(&upload).await.expect("upload recorded");
    store.mark_uploaded(&slug, 1234, &"ab".repeat(32), now).await.expect("upload marked");
    store.get_upload(&slug).await.expect("upload read").expect("upload exists")
}

/// A job in `created`, made at `now`.
pub(crate) async fn created_job(store: &dyn Store, owner: KeyOwner, now: i64) -> Uuid {
    let upload = uploaded(store, owner, now).await;
    let (job, inserted) =
        store.create_job(NewJob { id: Uuid::now_v7(), upload, main_file: None }, now).await.expect("job created");
    assert!(inserted);
    job.id
}

/// The analysis of a small file, with its id set as the server sets it.
pub(crate) fn analysis(id: Uuid, file_name: &str) -> Analysis {
    // From JSON, as it is stored: fields that are absent (optional ones added later) default.
    serde_json::from_value(json!({
        "id": id.to_string(),
        "fileName": file_name,
        "fileSize": 1234,
        "sha256": "ab".repeat(32),
        "compression": "zstd",
        "blenderVersion": "4.2",
        "fileVersion": {"major": 4, "minor": 2, "subversion": 1},
        "minBlenderVersion": "4.0",
        "activeScene": "Scene",
        "scenes": [],
        "dependencies": [],
        "warnings": [],
        "durationMs": 3
    }))
    .expect("an analysis")
}

/// What a client asks to render.
pub(crate) fn requested_config() -> RequestedConfig {
    RequestedConfig {
        color_management_preset: "default".into(),
        frame_ranges: Some(vec!["all".into()]),
        ..RequestedConfig::default()
    }
}

/// What every task of a job renders.
pub(crate) fn final_config() -> RenderConfig {
    serde_json::from_value(json!({
        "colorManagementPreset": "default",
        "frameRanges": ["1-6"],
        "renderEngine": "CYCLES",
        "sampleCount": 4,
        "resolution": [320, 240],
        "resolutionPercentage": 100,
        "outputFormat": "PNG",
        "outputSettings": {}
    }))
    .expect("a final config")
}

/// A job in `validated`, made at `now`.
pub(crate) async fn validated_job(store: &dyn Store, owner: KeyOwner, now: i64) -> Uuid {
    let id = created_job(store, owner, now).await;
    for (from, to) in [(JobStatus::Created, JobStatus::Validating), (JobStatus::Validating, JobStatus::Validated)] {
        let patch = if to == JobStatus::Validated {
            let analysis_id = Uuid::now_v7();
            JobPatch { analysis: Some((analysis_id, analysis(analysis_id, "shot.blend"))), ..JobPatch::default() }
        } else {
            JobPatch::default()
        };
        assert!(store.transition_job(id, from, to, patch, now).await.expect("transition"), "{from} → {to}");
    }
    id
}

/// A job in `booting` whose frames `1..=n_tasks * per_task` are split into `n_tasks` tasks.
pub(crate) async fn booting_job(store: &dyn Store, owner: KeyOwner, n_tasks: usize, per_task: usize, now: i64) -> Uuid {
    let id = validated_job(store, owner, now).await;
    let frames = FrameSet::from_frames(1..=(n_tasks * per_task) as i32).expect("frames");
    let start = StartRender {
        requested_config: requested_config(),
        final_config: final_config(),
        chunks: frames.chunks(per_task),
        priority: None,
    };
    assert!(store.start_render(id, start, now).await.expect("render started"));
    id
}

/// Claim options: `prefer` first, at `now`, blocklisted after 3 failures.
pub(crate) fn at(prefer: Option<Uuid>, now: i64) -> ClaimOptions {
    ClaimOptions { prefer, prefer_from_seq: 0, lease_ms: LEASE_MS, now, blocklist_after: 3 }
}

/// Ids of the runnable jobs, in the store's order.
pub(crate) async fn runnable_ids(store: &dyn Store, limit: u32) -> Vec<Uuid> {
    store.runnable_jobs(limit).await.expect("runnable jobs").into_iter().map(|it| it.id).collect()
}

/// Claims from every runnable job, as a worker would.
pub(crate) async fn claim(store: &dyn Store, worker: &str, now: i64) -> Option<ClaimedTask> {
    let ids = runnable_ids(store, 100).await;
    store.claim_task(worker, &ids, at(None, now)).await.expect("claim")
}

/// What a task delivers: one PNG per frame.
pub(crate) fn done_for(task: &ClaimedTask, render_seconds: f64) -> TaskDone {
    TaskDone {
        outputs: task
            .frames
            .frames()
            .iter()
            .map(|frame| NewOutput {
                kind: "frame".into(),
                frame: Some(*frame),
                file_name: format!("{frame:04}.png"),
                object_key: format!("jobs/{}/frames/{frame:04}.png", task.job_id),
                size: 100 + i64::from(*frame),
            })
            .collect(),
        render_seconds,
        speed_factor: 1.0,
        blender_version: Some("4.5.3".into()),
    }
}

/// The job, which must exist.
pub(crate) async fn job(store: &dyn Store, id: Uuid) -> orchard_store::Job {
    store.get_job_internal(id).await.expect("job read").expect("job exists")
}
