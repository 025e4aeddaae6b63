//! Preview images: a small PNG of a finished frame.

use std::path::Path;

use uuid::Uuid;

use crate::state::AppState;

/// Longest side of a preview, in pixels.
const PREVIEW_SIDE: u32 = 320;

/// Makes and stores the preview of `frame` (a local file); `None` when the frame's format
/// has no decoder here (EXR, TIFF …), which is not an error.
pub async fn make_preview(state: &AppState, job_id: Uuid, frame: &Path) -> anyhow::Result<Option<String>> {
    let frame = frame.to_path_buf();
    let png = tokio::task::spawn_blocking(move || -> anyhow::Result<Option<Vec<u8>>> {
        let ext = frame.extension().and_then(|it| it.to_str()).unwrap_or("").to_ascii_lowercase();
        if !matches!(ext.as_str(), "png" | "jpg" | "jpeg") {
            return Ok(None);
        }
        let image = image::open(&frame)?;
        // Shrink only: a small render is its own preview.
        let thumb = if image.width().max(image.height()) > PREVIEW_SIDE {
            image.thumbnail(PREVIEW_SIDE, PREVIEW_SIDE)
        } else {
            image
        };
        let mut out = std::io::Cursor::new(Vec::new());
        thumb.write_to(&mut out, image::ImageFormat::Png)?;
        Ok(Some(out.into_inner()))
    })
    .await??;
    let Some(png) = png else {
        return Ok(None);
    };
    let key = format!("jobs/{job_id}/preview.png");
    state.blobs.put(&key, png).await?;
    Ok(Some(key))
}
