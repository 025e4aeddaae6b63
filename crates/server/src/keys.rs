//! API keys (`RJ-…`) and worker tokens (`OW-…`): 192 random bits each, shown once, stored as
//! a sha256. They are distinct so that a render node's token never opens the client API.

use orchard_store::{KeyOwner, NewKey, Store};
use rand::RngCore;

use crate::http::extract::key_hash;
use crate::state::now_ms;

/// Characters of a key shown in listings (`RJ-` and 8 more).
const PREFIX_LEN: usize = 11;

/// Creates a key for `user` in `workspace` (both created if new) and returns it. The key
/// itself is not stored anywhere: this is the only time it exists in clear.
pub async fn create_key(store: &dyn Store, workspace: &str, user: &str) -> anyhow::Result<(String, KeyOwner)> {
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
