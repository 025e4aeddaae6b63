//! Preview images: a small PNG of a finished frame, refreshed while a job renders (at most
//! every [`PREVIEW_EVERY`] per job, in the background) and made once more from a
//! representative frame when it completes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use orchard_store::Store;
use tracing::{Instrument, warn};
use uuid::Uuid;

use crate::blobs::{Blobs, keys};
use crate::clock::now_ms;
use crate::error::Chain;
use crate::policy::{PREVIEW_EVERY, PREVIEW_SIDE};

/// Makes previews; remembers when each job's was last made.
pub(crate) struct Previews {
    blobs: Blobs,
    store: Arc<dyn Store>,
    tmp_dir: PathBuf,
    last: Mutex<HashMap<Uuid, Instant>>,
}

impl Previews {
    pub(crate) fn new(blobs: Blobs, store: Arc<dyn Store>, tmp_dir: PathBuf) -> Previews {
        Previews { blobs, store, tmp_dir, last: Mutex::default() }
    }

    /// Refreshes `job_id`'s preview from a stored frame (the latest finished), in the
    /// background, unless one was made less than [`PREVIEW_EVERY`] ago.
    pub(crate) fn frame_finished(self: &Arc<Self>, job_id: Uuid, frame_key: &str) {
        {
            let mut last = self.last.lock().unwrap_or_else(|it| it.into_inner());
            let now = Instant::now();
            if last.get(&job_id).is_some_and(|at| now.duration_since(*at) < PREVIEW_EVERY) {
                return;
            }
            last.insert(job_id, now);
            // Jobs stop rendering; keep the map from growing with history.
            last.retain(|_, at| now.duration_since(*at) < PREVIEW_EVERY * 30);
        }
        let previews = self.clone();
        let frame_key = frame_key.to_string();
        let refresh = async move {
            if let Err(error) = previews.refresh(job_id, &frame_key).await {
                warn!(error = %Chain(error.as_ref()), "no preview");
            }
        };
        tokio::spawn(refresh.in_current_span());
    }

    async fn refresh(&self, job_id: Uuid, frame_key: &str) -> anyhow::Result<()> {
        tokio::fs::create_dir_all(&self.tmp_dir).await?;
        let work = tempfile::tempdir_in(&self.tmp_dir)?;
        let name = frame_key.rsplit('/').next().unwrap_or("frame");
        let local = work.path().join(name);
        self.blobs.get_to_file(frame_key, &local).await?;
        if let Some(key) = self.make(job_id, &local).await? {
            self.store.set_preview(job_id, &key, now_ms()).await?;
            // For the event stream: a new preview to show (its URL comes with the job).
            self.store.record_event(job_id, "preview", None, now_ms()).await?;
        }
        Ok(())
    }

    /// Makes and stores the preview of `frame` (a local file) and returns its key; `None`
    /// when the frame's format has no decoder here (EXR, TIFF …), which is not an error.
    pub(crate) async fn make(&self, job_id: Uuid, frame: &Path) -> anyhow::Result<Option<String>> {
        let frame = frame.to_path_buf();
        let Some(png) = tokio::task::spawn_blocking(move || thumbnail(&frame)).await?? else {
            return Ok(None);
        };
        let key = keys::preview(job_id);
        self.blobs.put(&key, png).await?;
        // The job may have been deleted while this was made: leave nothing behind (a delete
        // also sweeps the job's folder once its records are gone).
        if self.store.get_job_internal(job_id).await?.is_none() {
            self.blobs.delete(&key).await?;
            return Ok(None);
        }
        Ok(Some(key))
    }
}

/// A PNG of `frame` no larger than [`PREVIEW_SIDE`]; `None` for formats without a decoder.
fn thumbnail(frame: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    let ext = frame.extension().and_then(|it| it.to_str()).unwrap_or("").to_ascii_lowercase();
    if !matches!(ext.as_str(), "png" | "jpg" | "jpeg") {
        return Ok(None);
    }
    let image = image::open(frame)?;
    // Shrink only: a small render is its own preview.
    let thumb = if image.width().max(image.height()) > PREVIEW_SIDE {
        image.thumbnail(PREVIEW_SIDE, PREVIEW_SIDE)
    } else {
        image
    };
    let mut out = std::io::Cursor::new(Vec::new());
    thumb.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(Some(out.into_inner()))
}
