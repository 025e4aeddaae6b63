//! Worker tokens and worker records, remembered briefly. Every worker call names both; reading
//! them from the database at each call would cost a busy farm two queries per call. A record
//! another server changed (a worker re-registering there) is seen here within
//! [`WORKER_MEMORY`].

use orchard_store::WorkerRecord;
use uuid::Uuid;

use crate::memory::Memory;
use crate::policy::{TOKEN_MEMORY, WORKER_MEMORY};

/// The remembered tokens and workers of this server.
#[derive(Debug)]
pub(crate) struct Presence {
    /// Token ids by token hash. Tokens are never reassigned.
    tokens: Memory<String, Uuid>,
    /// Worker records by worker id.
    workers: Memory<String, WorkerRecord>,
}

impl Default for Presence {
    fn default() -> Presence {
        Presence { tokens: Memory::new(TOKEN_MEMORY), workers: Memory::new(WORKER_MEMORY) }
    }
}

impl Presence {
    /// The token id of a token hash, if remembered.
    pub(crate) fn token(&self, hash: &str) -> Option<Uuid> {
        self.tokens.get(hash)
    }

    /// Remembers a token's id.
    pub(crate) fn remember_token(&self, hash: &str, id: Uuid) {
        self.tokens.remember(hash.to_string(), id);
    }

    /// A worker's record, if remembered.
    pub(crate) fn worker(&self, id: &str) -> Option<WorkerRecord> {
        self.workers.get(id)
    }

    /// Remembers a worker's record as just read or written.
    pub(crate) fn remember_worker(&self, record: WorkerRecord) {
        self.workers.remember(record.id.clone(), record);
    }

    /// Notes a worker's refined speed factor (stored), keeping the rest of its record.
    pub(crate) fn speed_refined(&self, id: &str, factor: f64) {
        self.workers.update(id, |record| {
            record.speed_factor = factor;
            record.speed_observations += 1;
        });
    }

    /// Notes that a worker was seen at `now` (stored), keeping the rest of its record.
    pub(crate) fn seen(&self, id: &str, now: i64) {
        self.workers.update(id, |record| record.last_seen_at = now);
    }
}
