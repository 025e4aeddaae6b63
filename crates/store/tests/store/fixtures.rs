//! Rows the tests build on: a key's owner, uploads, jobs in a given status.

use orchard_domain::{FrameSet, JobStatus};
use orchard_store::{
    ClaimOptions, ClaimedTask, JobPatch, KeyOwner, NewJob, NewKey, NewOutput, StartRender, Store, TaskDone, Upload,
};
use serde_json::json;
use uuid::Uuid;

/// A time well after the epoch; tests move time by adding to it.
pub const T0: i64 = 1_800_000_000_000;

/// Lease length the tests claim with.
pub const LEASE_MS: i64 = 60_000;

/// Creates a key for `user` in `workspace` and returns its owner.
pub async fn owner(store: &dyn Store, workspace: &str, user: &str) -> KeyOwner {
    let new = NewKey {
        workspace_name: workspace.into(),
        user_name: user.into(),
        key_hash: format!("hash-of-{workspace}-{user}"),
        prefix: format!("RJ-{workspace}-{user}"),
    };
    store.create_key(new, T0).await.expect("key created")
}

/// An upload of `owner` whose bytes arrived.
pub async fn uploaded(store: &dyn Store, owner: KeyOwner, now: i64) -> Upload {
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
    };
    store.insert_upload(&upload).await.expect("upload recorded");
    store.mark_uploaded(&slug, 1234, &"ab".repeat(32), now).await.expect("upload marked");
    store.get_upload(&slug).await.expect("upload read").expect("upload exists")
}

/// A job in `created`, made at `now`.
pub async fn created_job(store: &dyn Store, owner: KeyOwner, now: i64) -> Uuid {
    let upload = uploaded(store, owner, now).await;
    let (job, inserted) =
        store.create_job(NewJob { id: Uuid::now_v7(), upload, main_file: None }, now).await.expect("job created");
    assert!(inserted);
    job.id
}

/// A job in `validated`, made at `now`.
pub async fn validated_job(store: &dyn Store, owner: KeyOwner, now: i64) -> Uuid {
    let id = created_job(store, owner, now).await;
    for (from, to) in [(JobStatus::Created, JobStatus::Validating), (JobStatus::Validating, JobStatus::Validated)] {
        let patch = if to == JobStatus::Validated {
            JobPatch { analysis: Some((Uuid::now_v7(), json!({"scenes": [{"name": "Scene"}]}))), ..JobPatch::default() }
        } else {
            JobPatch::default()
        };
        assert!(store.transition_job(id, from, to, patch, now).await.expect("transition"), "{from} → {to}");
    }
    id
}

/// A job in `booting` whose frames `1..=n_tasks * per_task` are split into `n_tasks` tasks.
pub async fn booting_job(store: &dyn Store, owner: KeyOwner, n_tasks: usize, per_task: usize, now: i64) -> Uuid {
    let id = validated_job(store, owner, now).await;
    let frames = FrameSet::from_frames(1..=(n_tasks * per_task) as i32).expect("frames");
    let start = StartRender {
        requested_config: json!({"frameRanges": ["all"]}),
        final_config: json!({"engine": "CYCLES", "samples": 4}),
        chunks: frames.chunks(per_task),
    };
    assert!(store.start_render(id, start, now).await.expect("render started"));
    id
}

/// Claim options: `prefer` first, at `now`, blocklisted after 3 failures.
pub fn at(prefer: Option<Uuid>, now: i64) -> ClaimOptions {
    ClaimOptions { prefer, prefer_from_seq: 0, lease_ms: LEASE_MS, now, blocklist_after: 3 }
}

/// Claims from every runnable job, as a worker would.
pub async fn claim(store: &dyn Store, worker: &str, now: i64) -> Option<ClaimedTask> {
    let ids: Vec<Uuid> = store.runnable_job_ids(100).await.expect("runnable jobs");
    store.claim_task(worker, &ids, at(None, now)).await.expect("claim")
}

/// What a task delivers: one PNG per frame.
pub fn done_for(task: &ClaimedTask, render_seconds: f64) -> TaskDone {
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
    }
}

/// The job, which must exist.
pub async fn job(store: &dyn Store, id: Uuid) -> orchard_store::Job {
    store.get_job_internal(id).await.expect("job read").expect("job exists")
}
