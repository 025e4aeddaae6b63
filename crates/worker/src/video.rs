//! A job's video with ffmpeg: which ffmpeg a worker offers, the encoding (H.264 in an MP4,
//! yuv420p, at the scene's rate, with the scene's sound when Blender mixed one down), and the
//! check of what came out (ffprobe: codec, size, frame count, sound), as frames are checked.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use orchard_api::VideoInfo;
use serde::Deserialize;
use tokio::process::Command;

/// Longest an ffmpeg or ffprobe run may take; a video of a long sequence takes minutes.
const ENCODE_LIMIT: Duration = Duration::from_secs(3600);

/// The version of the ffmpeg at `ffmpeg` (`5.1.6-0+deb12u1`), or `None` when there is none
/// that runs (then the worker makes no videos). Its `ffprobe` must run beside it.
pub async fn ffmpeg_version(ffmpeg: &Path) -> Option<String> {
    let output = Command::new(ffmpeg).arg("-version").kill_on_drop(true).output().await.ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    // `ffmpeg version 5.1.6-0+deb12u1 Copyright …`
    let version = text.lines().next()?.strip_prefix("ffmpeg version ")?.split_whitespace().next()?.to_string();
    let probe = Command::new(ffprobe_beside(ffmpeg)).arg("-version").kill_on_drop(true).output().await.ok()?;
    (output.status.success() && probe.status.success() && !version.is_empty())
        .then(|| version.chars().take(100).collect())
}

/// The `ffprobe` that comes with `ffmpeg`: in its folder, or on the PATH as it is.
fn ffprobe_beside(ffmpeg: &Path) -> PathBuf {
    match ffmpeg.parent().filter(|it| !it.as_os_str().is_empty()) {
        Some(folder) => folder.join("ffprobe"),
        None => PathBuf::from("ffprobe"),
    }
}

/// What to encode.
pub(crate) struct Encode<'a> {
    /// The frames, numbered `f_000001.EXT` from 1 in `folder`.
    pub(crate) folder: &'a Path,
    /// Their extension (`png`, `jpg`).
    pub(crate) extension: &'a str,
    /// How many.
    pub(crate) count: usize,
    /// Frames per second.
    pub(crate) fps: f64,
    /// The scene's sound, mixed down.
    pub(crate) audio: Option<&'a Path>,
    /// Encoder threads; `None` for every core.
    pub(crate) threads: Option<u32>,
}

/// Encodes `input` into `output` with `ffmpeg` and checks the result; what ffmpeg said goes
/// into the error when it fails.
pub(crate) async fn encode(ffmpeg: &Path, input: &Encode<'_>, output: &Path) -> anyhow::Result<VideoInfo> {
    let mut command = Command::new(ffmpeg);
    command.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"]);
    command.arg("-framerate").arg(rate(input.fps));
    command.arg("-i").arg(input.folder.join(format!("f_%06d.{}", input.extension)));
    if let Some(audio) = input.audio {
        command.arg("-i").arg(audio);
    }
    command.args(["-map", "0:v:0"]);
    if input.audio.is_some() {
        command.args(["-map", "1:a:0", "-c:a", "aac", "-b:a", "192k"]);
    }
    // H.264 wants even sides: an odd frame gets a line of padding, never a stretch.
    command.args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]);
    command.args(["-movflags", "+faststart"]);
    if let Some(threads) = input.threads {
        command.arg("-threads").arg(threads.to_string());
    }
    command.arg(output);
    run(command, "ffmpeg").await?;
    let info = probe(&ffprobe_beside(ffmpeg), output).await?;
    if info.codec != "h264" {
        anyhow::bail!("ffmpeg made {} video, not H.264", info.codec);
    }
    if info.frames as usize != input.count {
        anyhow::bail!("the video has {} frames, the job {}", info.frames, input.count);
    }
    if input.audio.is_some() && !info.audio {
        anyhow::bail!("the video lost the scene's sound");
    }
    Ok(info)
}

/// `fps` as ffmpeg reads a rate: exact for whole numbers, `30000/1001` for NTSC's 29.97.
fn rate(fps: f64) -> String {
    let whole = fps.round();
    if (fps - whole).abs() < 1e-6 {
        return format!("{whole}");
    }
    let ntsc = (fps * 1001.0).round();
    if (ntsc / 1001.0 - fps).abs() < 1e-4 {
        return format!("{ntsc}/1001");
    }
    format!("{fps:.6}")
}

/// Runs `command`, failing with the end of what it printed.
async fn run(mut command: Command, what: &str) -> anyhow::Result<std::process::Output> {
    command.kill_on_drop(true).stdin(std::process::Stdio::null());
    let output = tokio::time::timeout(ENCODE_LIMIT, command.output())
        .await
        .with_context(|| format!("{what} ran past {} s", ENCODE_LIMIT.as_secs()))?
        .with_context(|| format!("could not start {what}"))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr);
        let tail: String = said.chars().rev().take(2000).collect::<Vec<_>>().into_iter().rev().collect();
        anyhow::bail!("{what} failed ({}): {}", output.status, tail.trim());
    }
    Ok(output)
}

#[derive(Deserialize)]
struct Probed {
    #[serde(default)]
    streams: Vec<ProbedStream>,
    format: Option<ProbedFormat>,
}

#[derive(Deserialize)]
struct ProbedStream {
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    nb_read_frames: Option<String>,
    avg_frame_rate: Option<String>,
}

#[derive(Deserialize)]
struct ProbedFormat {
    duration: Option<String>,
}

/// What the video at `path` is, as ffprobe reads it (frames counted by decoding).
async fn probe(ffprobe: &Path, path: &Path) -> anyhow::Result<VideoInfo> {
    let mut command = Command::new(ffprobe);
    command.args(["-v", "error", "-count_frames", "-print_format", "json", "-show_streams", "-show_format"]);
    command.arg(path);
    let output = run(command, "ffprobe").await?;
    let probed: Probed = serde_json::from_slice(&output.stdout).context("ffprobe's answer does not parse")?;
    let video = probed
        .streams
        .iter()
        .find(|it| it.codec_type.as_deref() == Some("video"))
        .context("the file has no video stream")?;
    let frames = video.nb_read_frames.as_deref().and_then(|it| it.parse().ok()).context("no frame count")?;
    let fps = video.avg_frame_rate.as_deref().and_then(parse_rate).context("no frame rate")?;
    let duration = probed.format.and_then(|it| it.duration).and_then(|it| it.parse().ok()).unwrap_or(0.0);
    let size = tokio::fs::metadata(path).await?.len();
    Ok(VideoInfo {
        file_name: path.file_name().map(|it| it.to_string_lossy().into_owned()).unwrap_or_default(),
        codec: video.codec_name.clone().unwrap_or_default(),
        width: video.width.unwrap_or(0),
        height: video.height.unwrap_or(0),
        fps,
        frames,
        duration_seconds: duration,
        audio: probed.streams.iter().any(|it| it.codec_type.as_deref() == Some("audio")),
        size,
    })
}

/// `30000/1001` or `24/1` as a number.
fn parse_rate(text: &str) -> Option<f64> {
    let (num, den) = text.split_once('/').unwrap_or((text, "1"));
    let (num, den): (f64, f64) = (num.parse().ok()?, den.parse().ok()?);
    (den > 0.0 && num > 0.0).then(|| ((num / den) * 1000.0).round() / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::{parse_rate, rate};

    #[test]
    fn rates_round_trip_between_scenes_and_ffmpeg() {
        assert_eq!(rate(24.0), "24");
        assert_eq!(rate(29.97), "30000/1001");
        assert_eq!(rate(12.5), "12.500000");
        assert_eq!(parse_rate("30000/1001"), Some(29.97));
        assert_eq!(parse_rate("24/1"), Some(24.0));
        assert_eq!(parse_rate("0/0"), None);
    }
}
