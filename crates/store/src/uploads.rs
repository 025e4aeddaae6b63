//! Upload targets: [`UploadStore`], and its implementation for both dialects.

use async_trait::async_trait;

use crate::{Result, Upload};

/// Where clients PUT scene files, and what arrived.
#[async_trait]
pub trait UploadStore: Send + Sync {
    /// Records a new upload target.
    async fn insert_upload(&self, upload: &Upload) -> Result<()>;
    /// Finds an upload by slug.
    async fn get_upload(&self, slug: &str) -> Result<Option<Upload>>;
    /// Whether a job was made from this upload (its bytes are then fixed).
    async fn upload_has_job(&self, slug: &str) -> Result<bool>;
    /// Records that the bytes arrived.
    async fn mark_uploaded(&self, slug: &str, size: i64, sha256: &str, now: i64) -> Result<()>;
}

/// `impl UploadStore for $store`, the same on both dialects. Expects `row_decoders!` in scope
/// and `$store` to have a `pool`.
macro_rules! upload_store {
    ($store:ty) => {
        const _: () = {
            use $crate::{Result, Upload, UploadStore};

            #[async_trait::async_trait]
            impl UploadStore for $store {
                async fn insert_upload(&self, upload: &Upload) -> Result<()> {
                    sqlx::query(
                        "insert into uploads (slug, workspace_id, user_id, file_name, file_type, object_key,
                                              expires_at, created_at, parts)
                         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(&upload.slug)
                    .bind(upload.workspace_id.to_string())
                    .bind(upload.user_id.to_string())
                    .bind(&upload.file_name)
                    .bind(&upload.file_type)
                    .bind(&upload.object_key)
                    .bind(upload.expires_at)
                    .bind(upload.created_at)
                    .bind(upload.parts.map(i64::from))
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn get_upload(&self, slug: &str) -> Result<Option<Upload>> {
                    let row = sqlx::query("select * from uploads where slug = $1")
                        .bind(slug)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(upload_from_row).transpose()
                }

                async fn upload_has_job(&self, slug: &str) -> Result<bool> {
                    Ok(sqlx::query_scalar("select exists (select 1 from jobs where upload_slug = $1)")
                        .bind(slug)
                        .fetch_one(&self.pool)
                        .await?)
                }

                async fn mark_uploaded(&self, slug: &str, size: i64, sha256: &str, now: i64) -> Result<()> {
                    sqlx::query("update uploads set uploaded_at = $1, size = $2, sha256 = $3 where slug = $4")
                        .bind(now)
                        .bind(size)
                        .bind(sha256)
                        .bind(slug)
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                }
            }
        };
    };
}

pub(crate) use upload_store;
