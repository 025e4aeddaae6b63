//! [`Memory`]: what a server remembers for a while to spare the database a read — a key's
//! owner, a worker token's id, a worker's record. Each entry is only a hint, kept for its
//! time to live; the map starts over past [`MAX_CALLERS`] entries (a farm has far fewer).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crate::policy::MAX_CALLERS;

/// Values by key, each remembered for `ttl`. Read-locked on the way in: every request asks,
/// from every runtime thread at once.
#[derive(Debug)]
pub(crate) struct Memory<K, V> {
    entries: RwLock<HashMap<K, (V, Instant)>>,
    ttl: Duration,
}

impl<K: Hash + Eq, V: Clone> Memory<K, V> {
    pub(crate) fn new(ttl: Duration) -> Memory<K, V> {
        Memory { entries: RwLock::default(), ttl }
    }

    /// The locks, recovering from a panic elsewhere: an entry is only a hint.
    fn read(&self) -> RwLockReadGuard<'_, HashMap<K, (V, Instant)>> {
        self.entries.read().unwrap_or_else(|it| it.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<K, (V, Instant)>> {
        self.entries.write().unwrap_or_else(|it| it.into_inner())
    }

    /// The value of `key`, if remembered less than its time to live ago.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.read().get(key).filter(|(_, at)| at.elapsed() < self.ttl).map(|(value, _)| value.clone())
    }

    /// Remembers `value` for `key`, from now.
    pub(crate) fn remember(&self, key: K, value: V) {
        let mut entries = self.write();
        if entries.len() >= MAX_CALLERS {
            entries.clear();
        }
        entries.insert(key, (value, Instant::now()));
    }

    /// Changes the remembered value of `key`, if any, keeping when it was remembered.
    pub(crate) fn update<Q>(&self, key: &Q, change: impl FnOnce(&mut V))
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some((value, _)) = self.write().get_mut(key) {
            change(value);
        }
    }
}
