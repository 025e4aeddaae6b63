//! API keys (`RJ-…`) and worker tokens (`OW-…`): 192 random bits each, shown once, stored as
//! a sha256. They are distinct so that a render node's token never opens the client API.
//!
//! Every API call names its key; [`KnownKeys`] remembers owners for [`KEY_MEMORY`], so that a
//! busy client costs no key lookup per request. A key revoked through another process stops
//! working within that time.

use orchard_store::{KeyOwner, NewKey, Store};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::clock::now_ms;
use crate::memory::Memory;
use crate::policy::KEY_MEMORY;

/// The sha256 hex under which a key or a token is stored.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Characters of a key shown in listings (`RJ-` and 8 more).
const PREFIX_LEN: usize = 11;

/// Creates a key for `user` in `workspace` (both created if new) and returns it. The key
/// itself is not stored anywhere: this is the only time it exists in clear.
pub async fn create_key(store: &dyn Store, workspace: &str, user: &str) -> anyhow::Result<(String, KeyOwner)> {
    create_key_as(store, workspace, user, false).await
}

/// [`create_key`], as an admin key when `admin` (it sees and steers the whole farm: every
/// workspace's jobs, all workers, draining).
pub async fn create_key_as(
    store: &dyn Store,
    workspace: &str,
    user: &str,
    admin: bool,
) -> anyhow::Result<(String, KeyOwner)> {
    if workspace.trim().is_empty() || user.trim().is_empty() {
        anyhow::bail!("workspace and user names must not be empty");
    }
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let key = format!("RJ-{}", hex::encode(bytes));
    let new = NewKey {
        workspace_name: workspace.trim().to_string(),
        user_name: user.trim().to_string(),
        key_hash: key_hash(&key),
        prefix: key[..PREFIX_LEN].to_string(),
        admin,
    };
    let owner = store.create_key(new, now_ms()).await?;
    Ok((key, owner))
}

/// Creates a worker token (`OW-` and 192 random bits) and returns it; only its sha256 is kept.
pub async fn create_worker_token(store: &dyn Store) -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("OW-{}", hex::encode(bytes));
    store.create_worker_token(&key_hash(&token), &token[..PREFIX_LEN], now_ms()).await?;
    Ok(token)
}

/// The owners of API keys this server looked up recently, by key hash.
#[derive(Debug)]
pub(crate) struct KnownKeys {
    owners: Memory<String, KeyOwner>,
}

impl Default for KnownKeys {
    fn default() -> KnownKeys {
        KnownKeys { owners: Memory::new(KEY_MEMORY) }
    }
}

impl KnownKeys {
    /// The owner of the key with `hash`: remembered, or looked up (unknown and revoked keys
    /// are not remembered, so a key created elsewhere works at once).
    pub(crate) async fn owner(&self, store: &dyn Store, hash: &str) -> orchard_store::Result<Option<KeyOwner>> {
        if let Some(owner) = self.owners.get(hash) {
            return Ok(Some(owner));
        }
        let owner = store.find_key(hash).await?;
        if let Some(owner) = owner {
            self.owners.remember(hash.to_string(), owner);
        }
        Ok(owner)
    }
}

/// Who is calling: the owner of the request's API key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller {
    /// The key's workspace.
    pub(crate) workspace_id: uuid::Uuid,
    /// The key's user.
    pub(crate) user_id: uuid::Uuid,
    /// An admin key: the whole farm.
    pub(crate) admin: bool,
}
