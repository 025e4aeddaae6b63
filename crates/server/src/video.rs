//! A job's video as its packaging task stored it, and the name it is delivered under. Kept
//! apart so that the collector of unreferenced files, the finalizer and the downloads all
//! read the same record.

use orchard_api::VideoInfo;
use orchard_domain::RenderConfig;
use serde::{Deserialize, Serialize};

/// What a finished packaging task stored (the `result` of its row).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Packaged {
    /// The video's object key.
    pub(crate) key: String,
    /// The video as the worker checked it.
    pub(crate) video: VideoInfo,
}

impl Packaged {
    /// The stored result, or `None` for one that does not decode (written by no one else).
    pub(crate) fn read(result: Option<&str>) -> Option<Packaged> {
        serde_json::from_str(result?).ok()
    }
}

/// The video's file name: the frames' own name without its frame number (`shot_####` →
/// `shot.mp4`), else the scene file's (`cube.blend` → `cube.mp4`), else `video.mp4`.
pub(crate) fn file_name(config: Option<&RenderConfig>, scene_file: &str) -> String {
    let clean = |text: &str| -> String {
        let kept: String = text
            .chars()
            .filter(|it| *it != '#')
            .map(|it| if it.is_ascii_alphanumeric() || matches!(it, '.' | '_' | '-') { it } else { '_' })
            .collect();
        kept.trim_matches(|it| matches!(it, '.' | '_' | '-')).chars().take(100).collect()
    };
    let from_frames = config.and_then(|it| it.output_name.as_deref()).map(clean).filter(|it| !it.is_empty());
    let stem = scene_file.rsplit(['/', '\\']).next().unwrap_or(scene_file);
    let stem = stem.rsplit_once('.').map_or(stem, |(it, _)| it);
    let name = from_frames.or_else(|| Some(clean(stem)).filter(|it| !it.is_empty()));
    format!("{}.mp4", name.as_deref().unwrap_or("video"))
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn a_video_is_named_after_its_frames_or_its_scene() {
        let mut config: orchard_domain::RenderConfig = serde_json::from_value(serde_json::json!({
            "colorManagementPreset": "default", "frameRanges": ["1-3"], "renderEngine": "CYCLES",
            "resolution": [64, 48], "resolutionPercentage": 100, "outputFormat": "PNG", "outputSettings": {}
        }))
        .unwrap();
        assert_eq!(file_name(Some(&config), "shot.blend"), "shot.mp4");
        config.output_name = Some("frame_####".into());
        assert_eq!(file_name(Some(&config), "shot.blend"), "frame.mp4");
        config.output_name = Some("####".into());
        assert_eq!(file_name(Some(&config), "my shot.v2.blend"), "my_shot.v2.mp4");
        assert_eq!(file_name(None, "...blend"), "video.mp4");
    }
}
