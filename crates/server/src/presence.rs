//! Worker tokens and worker records, remembered briefly. Every worker call names both; reading
//! them from the database at each call would cost a busy farm two queries per call. A record
//! another server changed (a worker re-registering there) is seen here within [`RECORD_TTL`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use orchard_store::WorkerRecord;
use uuid::Uuid;

/// How long a token's owner is remembered. Tokens are never reassigned.
const TOKEN_TTL: Duration = Duration::from_secs(60);
/// How long a worker record is remembered.
const RECORD_TTL: Duration = Duration::from_secs(5);
/// Entries kept at most; past that the map starts over (a farm has far fewer workers).
const MAX_ENTRIES: usize = 10_000;

/// The remembered tokens and workers of this server.
#[derive(Debug, Default)]
pub struct Presence {
    tokens: Mutex<HashMap<String, (Uuid, Instant)>>,
    workers: Mutex<HashMap<String, (WorkerRecord, Instant)>>,
}

impl Presence {
    /// The token id of a token hash, if remembered.
    pub fn token(&self, hash: &str) -> Option<Uuid> {
        let tokens = self.tokens.lock().unwrap_or_else(|it| it.into_inner());
        tokens.get(hash).filter(|(_, at)| at.elapsed() < TOKEN_TTL).map(|(id, _)| *id)
    }

    /// Remembers a token's id.
    pub fn remember_token(&self, hash: &str, id: Uuid) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|it| it.into_inner());
        if tokens.len() >= MAX_ENTRIES {
            tokens.clear();
        }
        tokens.insert(hash.to_string(), (id, Instant::now()));
    }

    /// A worker's record, if remembered.
    pub fn worker(&self, id: &str) -> Option<WorkerRecord> {
        let workers = self.workers.lock().unwrap_or_else(|it| it.into_inner());
        workers.get(id).filter(|(_, at)| at.elapsed() < RECORD_TTL).map(|(record, _)| record.clone())
    }

    /// Remembers a worker's record as just read or written.
    pub fn remember_worker(&self, record: WorkerRecord) {
        let mut workers = self.workers.lock().unwrap_or_else(|it| it.into_inner());
        if workers.len() >= MAX_ENTRIES {
            workers.clear();
        }
        workers.insert(record.id.clone(), (record, Instant::now()));
    }

    /// Notes that a worker was seen at `now` (stored), keeping the rest of its record.
    pub fn seen(&self, id: &str, now: i64) {
        let mut workers = self.workers.lock().unwrap_or_else(|it| it.into_inner());
        if let Some((record, _)) = workers.get_mut(id) {
            record.last_seen_at = now;
        }
    }
}
