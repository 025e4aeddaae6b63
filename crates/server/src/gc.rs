//! `orchard gc`: what the storage holds that no record refers to — frames of attempts that were
//! lost or failed after uploading, files of jobs deleted while a preview was being made, files
//! left by a crash between the records and the files — reported, and reclaimed.
//!
//! Only finished jobs' folders and scene copies are looked at: a running job's outputs exist
//! before its records do (a worker uploads, then completes). A file younger than the grace is
//! kept too (a job that just finished may still be writing its contact sheet or preview).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use orchard_domain::JobStatus;
use orchard_store::Store;
use uuid::Uuid;

use crate::blobs::{Blobs, keys};

/// Files younger than this are never reclaimed.
pub const GRACE: Duration = Duration::from_secs(3600);

/// What a collection found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Files under `jobs/` and `scenes/`, and their bytes.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Bytes that records refer to (or that belong to jobs still running).
    pub referenced_bytes: u64,
    /// Files nothing refers to: (key, bytes); deleted unless it was a dry run.
    pub unreferenced: Vec<(String, u64)>,
}

/// Looks for (and with `reclaim`, deletes) files nothing refers to, older than `grace` at `now`
/// (Unix milliseconds).
pub async fn collect(
    store: &dyn Store,
    blobs: &Blobs,
    reclaim: bool,
    now: i64,
    grace: Duration,
) -> anyhow::Result<Report> {
    // Every job, by id: whether it is finished, and the keys its records name.
    let mut finished: HashMap<Uuid, bool> = HashMap::new();
    let mut referenced: HashSet<String> = HashSet::new();
    let mut page = 1;
    loop {
        let (jobs, total) = store.list_all_jobs(&[], page, 100).await?;
        for job in &jobs {
            finished.insert(job.id, job.status.is_terminal());
            if job.outputs_deleted_at.is_none() {
                referenced.insert(job.object_key.clone());
            }
            // Archives are made as they download: a stored one (made before) is no one's.
            referenced.extend(job.preview_key.iter().cloned());
            if job.status == JobStatus::Completed && job.outputs_deleted_at.is_none() {
                referenced.insert(keys::contact_sheet(job.id));
            }
            for output in store.list_outputs(job.id).await? {
                referenced.insert(output.object_key);
            }
            if let Some(packaging) = store.packaging(job.id).await?
                && let Some(made) = crate::video::Packaged::read(packaging.result.as_deref())
            {
                referenced.insert(made.key);
            }
        }
        if jobs.is_empty() || u64::from(page) * 100 >= total {
            break;
        }
        page += 1;
    }
    let mut report = Report::default();
    for prefix in ["jobs", "scenes"] {
        for (key, size, modified) in blobs.list(prefix).await? {
            report.files += 1;
            report.bytes += size;
            let owner = job_of(&key);
            let running = owner.is_some_and(|id| finished.get(&id) == Some(&false));
            let young = now - modified < grace.as_millis() as i64;
            // A job made while the list was read may be missing from it: asked for again.
            let unlisted_job = match owner {
                Some(id) if !finished.contains_key(&id) => store.get_job_internal(id).await?.is_some(),
                _ => false,
            };
            if referenced.contains(&key) || running || young || unlisted_job {
                report.referenced_bytes += size;
                continue;
            }
            if reclaim {
                blobs.delete(&key).await?;
            }
            report.unreferenced.push((key, size));
        }
    }
    Ok(report)
}

/// The job a stored file belongs to: `jobs/{id}/…`, `scenes/{slug}/{id}`.
fn job_of(key: &str) -> Option<Uuid> {
    let mut parts = key.split('/');
    match parts.next()? {
        "jobs" => Uuid::parse_str(parts.next()?).ok(),
        "scenes" => Uuid::parse_str(parts.nth(1)?).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::job_of;

    #[test]
    fn a_file_is_known_by_its_job() {
        let id = uuid::Uuid::new_v4();
        assert_eq!(job_of(&format!("jobs/{id}/outputs/x.1.frame_0001.png")), Some(id));
        assert_eq!(job_of(&format!("scenes/slug/{id}")), Some(id));
        assert_eq!(job_of("uploads/slug"), None);
    }
}
