//! Settings and API keys: [`AccountStore`], and its implementation for both dialects.

use async_trait::async_trait;

use crate::{KeyInfo, KeyOwner, NewKey, Result};

/// Settings every server of a deployment shares, and the `RJ-` keys clients call with.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Returns the named setting, creating it with `make()` if absent. Used for secrets that
    /// every server of a deployment must share (the URL-signing key).
    async fn setting_or_insert(&self, name: &str, make: String) -> Result<String>;
    /// Creates a key for `user_name` in `workspace_name`, creating both if new.
    async fn create_key(&self, new: NewKey, now: i64) -> Result<KeyOwner>;
    /// Finds the owner of an unrevoked key by its hash.
    async fn find_key(&self, key_hash: &str) -> Result<Option<KeyOwner>>;
    /// Lists keys (never their hashes), newest first.
    async fn list_keys(&self) -> Result<Vec<KeyInfo>>;
    /// Revokes the key whose id or prefix is given; false if none matched.
    async fn revoke_key(&self, id_or_prefix: &str, now: i64) -> Result<bool>;
    /// Sets a workspace's share of the farm (its weight when several workspaces wait); false if
    /// there is no workspace of that name.
    async fn set_share(&self, workspace: &str, share: f64) -> Result<bool>;
    /// Sets how long a workspace's finished jobs keep their files, in seconds (0: forever;
    /// `None`: the server's default); false if there is no workspace of that name.
    async fn set_retention(&self, workspace: &str, seconds: Option<i64>) -> Result<bool>;
}

/// `impl AccountStore for $store`, the same on both dialects. Expects `row_decoders!` in scope
/// and `$store` to have a `pool` and a `write()`.
macro_rules! account_store {
    ($store:ty) => {
        const _: () = {
            use uuid::Uuid;

            use $crate::{AccountStore, KeyInfo, KeyOwner, NewKey, Result};

            #[async_trait::async_trait]
            impl AccountStore for $store {
                async fn setting_or_insert(&self, name: &str, make: String) -> Result<String> {
                    // Insert-or-ignore then read: concurrent first starts agree on one value (on
                    // PostgreSQL the loser's insert waits for the winner's commit, then does
                    // nothing).
                    sqlx::query("insert into settings (name, value) values ($1, $2) on conflict (name) do nothing")
                        .bind(name)
                        .bind(make)
                        .execute(&self.pool)
                        .await?;
                    Ok(sqlx::query_scalar("select value from settings where name = $1")
                        .bind(name)
                        .fetch_one(&self.pool)
                        .await?)
                }

                async fn create_key(&self, new: NewKey, now: i64) -> Result<KeyOwner> {
                    let mut tx = self.write().await?;
                    sqlx::query(
                        "insert into workspaces (id, name, created_at) values ($1, $2, $3) on conflict (name) do nothing",
                    )
                    .bind(Uuid::now_v7().to_string())
                    .bind(&new.workspace_name)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    let workspace_id: String = sqlx::query_scalar("select id from workspaces where name = $1")
                        .bind(&new.workspace_name)
                        .fetch_one(&mut *tx)
                        .await?;
                    sqlx::query(
                        "insert into users (id, workspace_id, name, created_at) values ($1, $2, $3, $4)
                         on conflict (workspace_id, name) do nothing",
                    )
                    .bind(Uuid::now_v7().to_string())
                    .bind(&workspace_id)
                    .bind(&new.user_name)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    let user_id: String =
                        sqlx::query_scalar("select id from users where workspace_id = $1 and name = $2")
                            .bind(&workspace_id)
                            .bind(&new.user_name)
                            .fetch_one(&mut *tx)
                            .await?;
                    let key_id = Uuid::now_v7();
                    sqlx::query(
                        "insert into api_keys (id, key_hash, prefix, workspace_id, user_id, created_at, admin)
                         values ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(key_id.to_string())
                    .bind(&new.key_hash)
                    .bind(&new.prefix)
                    .bind(&workspace_id)
                    .bind(&user_id)
                    .bind(now)
                    .bind(i64::from(new.admin))
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(KeyOwner {
                        key_id,
                        workspace_id: $crate::rows::uuid(&workspace_id, "workspaces", "id")?,
                        user_id: $crate::rows::uuid(&user_id, "users", "id")?,
                        admin: new.admin,
                    })
                }

                async fn find_key(&self, key_hash: &str) -> Result<Option<KeyOwner>> {
                    let row = sqlx::query(
                        "select id, workspace_id, user_id, admin from api_keys where key_hash = $1 and revoked_at is null",
                    )
                    .bind(key_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.as_ref().map(key_owner_from_row).transpose()
                }

                async fn list_keys(&self) -> Result<Vec<KeyInfo>> {
                    let rows = sqlx::query(
                        "select k.id, k.prefix, w.name as workspace, u.name as user, k.created_at, k.revoked_at, k.admin
                         from api_keys k join workspaces w on w.id = k.workspace_id join users u on u.id = k.user_id
                         order by k.created_at desc",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(key_info_from_row).collect()
                }

                async fn set_retention(&self, workspace: &str, seconds: Option<i64>) -> Result<bool> {
                    let done = sqlx::query("update workspaces set retention_seconds = $1 where name = $2")
                        .bind(seconds)
                        .bind(workspace)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn set_share(&self, workspace: &str, share: f64) -> Result<bool> {
                    let done = sqlx::query("update workspaces set share = $1 where name = $2")
                        .bind(share)
                        .bind(workspace)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn revoke_key(&self, id_or_prefix: &str, now: i64) -> Result<bool> {
                    let done = sqlx::query(
                        "update api_keys set revoked_at = $1 where (id = $2 or prefix = $2) and revoked_at is null",
                    )
                    .bind(now)
                    .bind(id_or_prefix)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() > 0)
                }
            }
        };
    };
}

pub(crate) use account_store;
