//! Worker tokens and worker records, remembered briefly. Every worker call names both; reading
//! them from the database at each call would cost a busy farm two queries per call. A record
//! another server changed (a worker re-registering there) is seen here within
//! [`WORKER_MEMORY`].

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use orchard_store::WorkerRecord;
use uuid::Uuid;

use crate::policy::{MAX_CALLERS, TOKEN_MEMORY, WORKER_MEMORY};

/// The remembered tokens and workers of this server.
#[derive(Debug, Default)]
pub(crate) struct Presence {
    tokens: Mutex<HashMap<String, (Uuid, Instant)>>,
    workers: Mutex<HashMap<String, (WorkerRecord, Instant)>>,
}

/// Locks a memory, recovering from a panic elsewhere (each entry is only a hint).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|it| it.into_inner())
}

impl Presence {
    /// The token id of a token hash, if remembered.
    pub(crate) fn token(&self, hash: &str) -> Option<Uuid> {
        lock(&self.tokens).get(hash).filter(|(_, at)| at.elapsed() < TOKEN_MEMORY).map(|(id, _)| *id)
    }

    /// Remembers a token's id.
    pub(crate) fn remember_token(&self, hash: &str, id: Uuid) {
        let mut tokens = lock(&self.tokens);
        if tokens.len() >= MAX_CALLERS {
            tokens.clear();
        }
        tokens.insert(hash.to_string(), (id, Instant::now()));
    }

    /// A worker's record, if remembered.
    pub(crate) fn worker(&self, id: &str) -> Option<WorkerRecord> {
        lock(&self.workers).get(id).filter(|(_, at)| at.elapsed() < WORKER_MEMORY).map(|(record, _)| record.clone())
    }

    /// Remembers a worker's record as just read or written.
    pub(crate) fn remember_worker(&self, record: WorkerRecord) {
        let mut workers = lock(&self.workers);
        if workers.len() >= MAX_CALLERS {
            workers.clear();
        }
        workers.insert(record.id.clone(), (record, Instant::now()));
    }

    /// Notes that a worker was seen at `now` (stored), keeping the rest of its record.
    pub(crate) fn seen(&self, id: &str, now: i64) {
        if let Some((record, _)) = lock(&self.workers).get_mut(id) {
            record.last_seen_at = now;
        }
    }
}
