//! The order claims take runnable jobs in (pure): **priority** first (higher first); among
//! equal priority, **fair share** — the workspace that has had the least of the farm lately,
//! for its share, goes first; then **age** (older first).
//!
//! "Lately" is the frames a workspace's claims took here, halved every
//! [`FAIR_SHARE_HALF_LIFE`]: a workspace that rendered a lot an hour ago is not held back now,
//! and one with a small job is served between the tasks of another's big one. Each server
//! keeps its own account (a hint, like every scheduler memory): with several servers, each
//! one's claims are fair, and so is their sum.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use orchard_store::RunnableJob;
use uuid::Uuid;

use crate::policy::FAIR_SHARE_HALF_LIFE;

/// Frames each workspace's claims took lately, decayed.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    frames: HashMap<Uuid, (f64, Instant)>,
}

impl Usage {
    /// `workspace`'s recent frames at `now`.
    pub(crate) fn of(&self, workspace: Uuid, now: Instant) -> f64 {
        self.frames.get(&workspace).map_or(0.0, |(frames, at)| decayed(*frames, now.duration_since(*at)))
    }

    /// A claim of `workspace` took `frames` at `now`.
    pub(crate) fn add(&mut self, workspace: Uuid, frames: usize, now: Instant) {
        let recent = self.of(workspace, now);
        self.frames.insert(workspace, (recent + frames as f64, now));
        // Workspaces whose account decayed to nothing are forgotten.
        self.frames.retain(|_, (frames, at)| decayed(*frames, now.duration_since(*at)) >= 0.01);
    }
}

fn decayed(frames: f64, age: Duration) -> f64 {
    frames * 0.5f64.powf(age.as_secs_f64() / FAIR_SHARE_HALF_LIFE.as_secs_f64())
}

/// `jobs` (highest priority, then oldest, first: as the store lists them) in claim order.
pub(crate) fn in_claim_order(jobs: &[RunnableJob], usage: &Usage, now: Instant) -> Vec<RunnableJob> {
    let mut ordered = jobs.to_vec();
    // A stable sort: jobs that tie keep the store's order, oldest first.
    ordered.sort_by(|a, b| {
        b.priority.cmp(&a.priority).then_with(|| standing(a, usage, now).total_cmp(&standing(b, usage, now)))
    });
    ordered
}

/// How much of the farm `job`'s workspace had lately for its share: lower goes first.
pub(crate) fn standing(job: &RunnableJob, usage: &Usage, now: Instant) -> f64 {
    usage.of(job.workspace_id, now) / job.share.max(f64::MIN_POSITIVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(workspace: Uuid, priority: i64, share: f64) -> RunnableJob {
        RunnableJob { id: Uuid::now_v7(), workspace_id: workspace, priority, share }
    }

    #[test]
    fn priority_then_the_workspace_served_least_then_age() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let now = Instant::now();
        let mut usage = Usage::default();
        let (big, small) = (job(a, 50, 1.0), job(b, 50, 1.0));
        let jobs = vec![big.clone(), small.clone()];
        // Nothing served yet: the older job first.
        assert_eq!(in_claim_order(&jobs, &usage, now)[0].id, big.id);
        // Once a's job took a task, b's goes next, then they alternate.
        usage.add(a, 1, now);
        assert_eq!(in_claim_order(&jobs, &usage, now)[0].id, small.id);
        usage.add(b, 1, now);
        assert_eq!(in_claim_order(&jobs, &usage, now)[0].id, big.id);
        // Priority outranks the account.
        let urgent = job(a, 90, 1.0);
        usage.add(a, 100, now);
        assert_eq!(in_claim_order(&[small.clone(), urgent.clone()], &usage, now)[0].id, urgent.id);
    }

    #[test]
    fn a_larger_share_takes_more_before_yielding() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let now = Instant::now();
        let mut usage = Usage::default();
        usage.add(a, 3, now);
        usage.add(b, 1, now);
        // a has a share of 4: 3 frames are less of it than 1 frame of b's share of 1.
        let jobs = [job(b, 50, 1.0), job(a, 50, 4.0)];
        assert_eq!(in_claim_order(&jobs, &usage, now)[0].workspace_id, a);
    }

    #[test]
    fn an_account_halves_every_half_life() {
        let a = Uuid::now_v7();
        let start = Instant::now();
        let mut usage = Usage::default();
        usage.add(a, 8, start);
        let later = start + FAIR_SHARE_HALF_LIFE;
        assert!((usage.of(a, later) - 4.0).abs() < 1e-9, "{}", usage.of(a, later));
    }
}
