//! Blob storage through `object_store`: scene files, frames, previews, archives.
//!
//! Keys: `uploads/{slug}` (scene files), `jobs/{job}/frames/{file}`, `jobs/{job}/preview.png`,
//! `jobs/{job}/frames.zip`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

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
        Ok(Blobs { store: Arc::new(store) })
    }

    /// Streams `body` to `key`, hashing as it goes; refuses past `limit` bytes and then stores nothing.
    pub async fn put_stream<S, E>(&self, key: &str, mut body: S, limit: u64) -> Result<Written, WriteError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let path = ObjectPath::from(key);
        let upload = self.store.put_multipart(&path).await.context("starting a storage write")?;
        let mut writer = WriteMultipart::new(upload);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(WriteError::Stream(e.to_string()));
                }
            };
            size += chunk.len() as u64;
            if size > limit {
                let _ = writer.abort().await;
                return Err(WriteError::TooLarge { limit });
            }
            hasher.update(&chunk);
            writer.write(&chunk);
        }
        writer.finish().await.context("finishing a storage write")?;
        Ok(Written { size, sha256: hex::encode(hasher.finalize()) })
    }

    /// Stores bytes at `key`.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.store
            .put(&ObjectPath::from(key), PutPayload::from(bytes))
            .await
            .with_context(|| format!("storing {key}"))?;
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
        let result = self.store.get(&ObjectPath::from(key)).await.with_context(|| format!("reading {key}"))?;
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
        match self.store.head(&ObjectPath::from(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("looking up {key}")),
        }
    }

    /// Reads `key` whole (small objects only: previews).
    pub async fn get_bytes(&self, key: &str) -> anyhow::Result<Bytes> {
        let result = self.store.get(&ObjectPath::from(key)).await.with_context(|| format!("reading {key}"))?;
        Ok(result.bytes().await?)
    }

    /// A stream of `key`'s bytes and its size; `None` if there is no such object.
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> anyhow::Result<Option<(u64, impl Stream<Item = Result<Bytes, object_store::Error>> + Send + 'static)>> {
        match self.store.get(&ObjectPath::from(key)).await {
            Ok(result) => {
                let size = result.meta.size;
                Ok(Some((size, result.into_stream())))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {key}")),
        }
    }
}
