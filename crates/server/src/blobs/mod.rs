//! Blob storage through `object_store`: scene files, frames, previews, archives.
//!
//! What lives under which key is [`keys`]' business.
//!
//! Two backends: a local directory (the default), whose URLs the server signs itself and
//! serves from its own routes (`signing.rs`), and an S3-compatible bucket, whose URLs are
//! SigV4-presigned through `object_store`'s [`Signer`] so that clients PUT and GET straight
//! at the bucket and no file passes through the server.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use futures::{FutureExt, Stream, StreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::signer::{SignedUrlOptions, Signer};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

pub(crate) mod keys;

/// Bodies up to this size are stored in one write; larger ones stream in parts.
const GATHER_BYTES: u64 = 8 * 1024 * 1024;

/// Why a streamed write stopped.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// More bytes than allowed arrived.
    #[error("more than {limit} bytes")]
    TooLarge {
        /// The cap.
        limit: u64,
    },
    /// The client's stream broke.
    #[error("the upload stream broke: {0}")]
    Stream(String),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] anyhow::Error),
}

/// The blob store.
#[derive(Clone, Debug)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    /// Presigns URLs to the bucket; `None` for a local directory, which has no URLs of its own.
    signer: Option<Arc<dyn Signer>>,
    /// The bucket's own multipart uploads, for clients that send a big file in parts.
    multipart: Option<Arc<object_store::aws::AmazonS3>>,
    /// Where Orchard's keys start in the bucket (`s3://bucket/PREFIX`): empty, or ending in `/`.
    prefix: String,
    /// The directory of a local store, for lookups that need no thread of their own.
    root: Option<std::path::PathBuf>,
}

/// An HTTP method a presigned URL allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presign {
    /// Download the object.
    Get,
    /// Upload (replace) the object.
    Put,
}

/// What a streamed write stored.
#[derive(Debug, Clone)]
pub struct Written {
    /// Bytes.
    pub size: u64,
    /// sha256 hex.
    pub sha256: String,
}

impl Blobs {
    /// Blobs under a local directory (created if missing).
    pub fn local(dir: &Path) -> anyhow::Result<Blobs> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let store = LocalFileSystem::new_with_prefix(dir)
            .with_context(|| format!("opening storage at {}", dir.display()))?
            .with_automatic_cleanup(true);
        let root = Some(dir.canonicalize().with_context(|| format!("opening storage at {}", dir.display()))?);
        Ok(Blobs { store: Arc::new(store), signer: None, multipart: None, prefix: String::new(), root })
    }

    /// Blobs in an S3-compatible bucket: `s3://BUCKET[/PREFIX][?OPTION=VALUE&…]`.
    ///
    /// Credentials, region and endpoint come from the standard `AWS_*` variables
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL` for a
    /// server other than AWS, `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint). Query options
    /// override them, named as `object_store` names them (`?endpoint=http://127.0.0.1:3900&region=garage`).
    /// Requests are path-style unless `virtual_hosted_style_request=true`.
    ///
    /// The keys must be static (an access key and its secret): presigning then never waits
    /// on a credential service, which is what lets [`Blobs::presigned_url_now`] sign inside
    /// synchronous code.
    pub fn s3(url: &str) -> anyhow::Result<Blobs> {
        let parsed = url::Url::parse(url).with_context(|| format!("reading the storage URL {}", redact_query(url)))?;
        anyhow::ensure!(parsed.scheme() == "s3", "the storage URL must start with s3://");
        let bucket = parsed.host_str().filter(|it| !it.is_empty()).context("the storage URL names no bucket")?;
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (name, value) in parsed.query_pairs() {
            let key = AmazonS3ConfigKey::from_str(&name)
                .map_err(|_| anyhow::anyhow!("unknown S3 option {name:?} in the storage URL"))?;
            builder = builder.with_config(key, value.into_owned());
        }
        for (key, variable) in [
            (AmazonS3ConfigKey::AccessKeyId, "AWS_ACCESS_KEY_ID"),
            (AmazonS3ConfigKey::SecretAccessKey, "AWS_SECRET_ACCESS_KEY"),
        ] {
            anyhow::ensure!(
                builder.get_config_value(&key).is_some_and(|it| !it.is_empty()),
                "S3 storage needs {variable} (static keys: presigned URLs are signed with them)"
            );
        }
        let s3 = Arc::new(builder.build().with_context(|| format!("opening the bucket {bucket}"))?);
        let prefix = parsed.path().trim_matches('/');
        let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
        Ok(Blobs { store: s3.clone(), signer: Some(s3.clone()), multipart: Some(s3), prefix, root: None })
    }

    /// The directory of a local store; `None` for a bucket.
    pub(crate) fn local_root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// Whether clients reach files through presigned bucket URLs rather than the server.
    pub fn is_bucket(&self) -> bool {
        self.signer.is_some()
    }

    /// The object path of `key`.
    fn path(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() { ObjectPath::from(key) } else { ObjectPath::from(format!("{}{key}", self.prefix)) }
    }

    /// A URL that lets whoever holds it `method` `key` straight at the bucket for `ttl`;
    /// `None` for a local directory (the server signs its own URLs for that).
    pub async fn presigned_url(&self, method: Presign, key: &str, ttl: Duration) -> anyhow::Result<Option<String>> {
        let Some(signer) = &self.signer else { return Ok(None) };
        let method = match method {
            Presign::Get => axum::http::Method::GET,
            Presign::Put => axum::http::Method::PUT,
        };
        let url = signer.signed_url(method, &self.path(key), ttl).await.with_context(|| format!("presigning {key}"))?;
        Ok(Some(url.to_string()))
    }

    /// [`Blobs::presigned_url`] for synchronous code: `None` for a local directory, and also
    /// if signing would have to wait (it does not with static keys, which [`Blobs::s3`]
    /// requires; callers then fall back to the server's own URL).
    pub fn presigned_url_now(&self, method: Presign, key: &str, ttl: Duration) -> Option<String> {
        match self.presigned_url(method, key, ttl).now_or_never()? {
            Ok(url) => url,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "presigning failed");
                None
            }
        }
    }

    /// Starts the bucket's multipart upload of `key` and returns its id; `None` for a local
    /// directory (the server takes the parts itself).
    pub async fn start_multipart(&self, key: &str) -> anyhow::Result<Option<String>> {
        let Some(multipart) = &self.multipart else { return Ok(None) };
        let id =
            multipart.create_multipart(&self.path(key)).await.with_context(|| format!("starting {key} in parts"))?;
        Ok(Some(id))
    }

    /// A presigned URL to PUT part `part_number` (from 1) of the bucket's multipart upload `id`.
    pub async fn presigned_part_url(
        &self,
        key: &str,
        id: &str,
        part_number: u32,
        ttl: Duration,
    ) -> anyhow::Result<String> {
        let signer = self.signer.as_ref().context("local storage has no presigned part URLs")?;
        let options = SignedUrlOptions::default()
            .with_query([("partNumber", part_number.to_string()), ("uploadId", id.to_string())]);
        let url = signer
            .signed_url_opts(axum::http::Method::PUT, &self.path(key), ttl, &options)
            .await
            .with_context(|| format!("presigning part {part_number} of {key}"))?;
        Ok(url.to_string())
    }

    /// Completes the bucket's multipart upload `id` of `key` from its parts' ETags, in order.
    /// The bucket's refusal (a wrong ETag, a missing or too small part, an unknown id) is
    /// the error's message.
    pub async fn complete_multipart(&self, key: &str, id: &str, etags: Vec<String>) -> Result<(), String> {
        let multipart = self.multipart.as_ref().ok_or("local storage has no multipart uploads")?;
        let parts = etags.into_iter().map(|content_id| PartId { content_id }).collect();
        multipart.complete_multipart(&self.path(key), &id.to_string(), parts).await.map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Deletes `key`; a missing one is no error.
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("deleting {key}")),
        }
    }

    /// Every file under the folder `prefix`: (key, size, last modified in Unix milliseconds).
    pub async fn list(&self, prefix: &str) -> anyhow::Result<Vec<(String, u64, i64)>> {
        use futures::StreamExt;
        let mut listed = self.store.list(Some(&self.path(prefix)));
        let mut found = Vec::new();
        while let Some(meta) = listed.next().await {
            let meta = meta.with_context(|| format!("listing {prefix}"))?;
            let location = meta.location.to_string();
            let key = location.strip_prefix(&self.prefix).unwrap_or(&location).to_string();
            found.push((key, meta.size, meta.last_modified.timestamp_millis()));
        }
        Ok(found)
    }

    /// Deletes every file under the folder `prefix` (`jobs/{id}`); returns how many.
    pub async fn delete_prefix(&self, prefix: &str) -> anyhow::Result<u64> {
        use futures::StreamExt;
        let mut listed = self.store.list(Some(&self.path(prefix)));
        let mut deleted = 0;
        while let Some(meta) = listed.next().await {
            let meta = meta.with_context(|| format!("listing {prefix}"))?;
            match self.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                Err(e) => return Err(e).with_context(|| format!("deleting {}", meta.location)),
            }
        }
        Ok(deleted)
    }

    /// Copies `from` to `to` inside the storage (server-side for a bucket: no bytes pass
    /// through the server).
    pub async fn copy(&self, from: &str, to: &str) -> anyhow::Result<()> {
        self.store.copy(&self.path(from), &self.path(to)).await.with_context(|| format!("copying {from} to {to}"))?;
        Ok(())
    }

    /// Streams `body` to `key`, hashing as it goes; refuses past `limit` bytes and then stores nothing.
    pub async fn put_stream<S, E>(&self, key: &str, mut body: S, limit: u64) -> Result<Written, WriteError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let path = self.path(key);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        // Small bodies (most frames) are gathered and stored in one write: a multipart write
        // costs several round trips to the disk's or the bucket's threads.
        let mut gathered: Vec<Bytes> = Vec::new();
        let mut writer = None;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    if let Some(writer) = writer {
                        let _ = WriteMultipart::abort(writer).await;
                    }
                    return Err(WriteError::Stream(e.to_string()));
                }
            };
            size += chunk.len() as u64;
            if size > limit {
                if let Some(writer) = writer {
                    let _ = WriteMultipart::abort(writer).await;
                }
                return Err(WriteError::TooLarge { limit });
            }
            hasher.update(&chunk);
            match &mut writer {
                Some(writer) => writer.write(&chunk),
                None if size <= GATHER_BYTES => gathered.push(chunk),
                None => {
                    let upload = self.store.put_multipart(&path).await.context("starting a storage write")?;
                    let mut started = WriteMultipart::new(upload);
                    for piece in gathered.drain(..) {
                        started.write(&piece);
                    }
                    started.write(&chunk);
                    writer = Some(started);
                }
            }
        }
        match writer {
            Some(writer) => {
                writer.finish().await.context("finishing a storage write")?;
            }
            None => {
                let payload: PutPayload = gathered.into_iter().collect();
                self.store.put(&path, payload).await.context("storing a file")?;
            }
        }
        Ok(Written { size, sha256: hex::encode(hasher.finalize()) })
    }

    /// Stores bytes at `key`.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.store.put(&self.path(key), PutPayload::from(bytes)).await.with_context(|| format!("storing {key}"))?;
        Ok(())
    }

    /// Stores a local file at `key`.
    pub async fn put_file(&self, key: &str, file: &Path) -> anyhow::Result<u64> {
        let handle = tokio::fs::File::open(file).await.with_context(|| format!("opening {}", file.display()))?;
        let stream = tokio_util::io::ReaderStream::with_capacity(handle, 1 << 20);
        let written =
            self.put_stream(key, stream, u64::MAX).await.map_err(|e| anyhow::anyhow!("storing {key}: {e}"))?;
        Ok(written.size)
    }

    /// Copies `key` into a local file.
    pub async fn get_to_file(&self, key: &str, dest: &Path) -> anyhow::Result<u64> {
        let result = self.store.get(&self.path(key)).await.with_context(|| format!("reading {key}"))?;
        let mut stream = result.into_stream();
        let mut file = tokio::fs::File::create(dest).await.with_context(|| format!("creating {}", dest.display()))?;
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.with_context(|| format!("reading {key}"))?;
            size += chunk.len() as u64;
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        Ok(size)
    }

    /// The size of `key`, or `None` if there is no such object.
    pub async fn size(&self, key: &str) -> anyhow::Result<Option<u64>> {
        // On a local disk a stat takes microseconds: asking `object_store` would hand it to a
        // blocking thread and back, which costs a busy farm more than the stat itself.
        if let Some(root) = &self.root {
            let path = root.join(self.path(key).as_ref());
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_file() => return Ok(Some(meta.len())),
                Ok(_) => return Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(_) => {}
            }
        }
        match self.store.head(&self.path(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("looking up {key}")),
        }
    }

    /// Reads `key` whole (small objects only: previews).
    pub async fn get_bytes(&self, key: &str) -> anyhow::Result<Bytes> {
        let result = self.store.get(&self.path(key)).await.with_context(|| format!("reading {key}"))?;
        Ok(result.bytes().await?)
    }

    /// A stream of `key`'s bytes and its size; `None` if there is no such object.
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> anyhow::Result<Option<(u64, impl Stream<Item = Result<Bytes, object_store::Error>> + Send + 'static)>> {
        match self.store.get(&self.path(key)).await {
            Ok(result) => {
                let size = result.meta.size;
                Ok(Some((size, result.into_stream())))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {key}")),
        }
    }
}

/// `url` without its query, which may hold S3 options and secrets.
fn redact_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}
