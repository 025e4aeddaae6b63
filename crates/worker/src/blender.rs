//! One Blender process running the Orchard driver.
//!
//! Blender is started in its own process group, so that stopping it also stops anything it
//! started (OIDN helpers, shader compilers); `--disable-autoexec` keeps Python embedded in an
//! uploaded `.blend` from running on our machines.

use std::collections::VecDeque;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// The driver, embedded so that a worker binary needs no files beside it.
pub const DRIVER: &str = include_str!("../driver/orchard_driver.py");
/// Prefix of the driver's event lines.
const EVENT_PREFIX: &str = "ORCHARD ";
/// Lines of Blender output kept for failure reports.
const LOG_TAIL_LINES: usize = 40;
/// Bytes of output held for the next report to the server (the server's limit per call is in
/// characters, of which there are never more than bytes); older lines go first.
const PENDING_LOG_BYTES: usize = orchard_api::limits::MAX_LOG_CHUNK;
/// How long Blender gets to exit after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// An event the driver printed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DriverEvent {
    /// The config is applied and rendering begins.
    Started {
        /// Blender's version string.
        blender: String,
        /// The scene rendered.
        scene: String,
        /// The scene renders a border cropped to it: outputs are smaller than the resolution.
        #[serde(default)]
        cropped: bool,
    },
    /// A frame was written.
    Frame {
        /// Frame number.
        frame: i32,
        /// Where Blender wrote it.
        path: String,
        /// Seconds it took.
        seconds: f64,
        /// What the scene's compositor File Output nodes wrote for it.
        #[serde(default)]
        composites: Vec<CompositeFile>,
        /// A multiview render's file per view (`path` is the first's); empty otherwise.
        #[serde(default)]
        views: Vec<ViewFile>,
    },
    /// A packaging run prepared the video's inputs.
    Packaged {
        /// The scene's sound mixed down (FLAC), when the scene has any.
        audio: Option<String>,
        /// The frames converted to 8-bit PNG through the scene's view transform, in order;
        /// empty when the frames go to ffmpeg as they are.
        frames: Vec<String>,
    },
    /// Every frame was rendered.
    Done,
    /// The driver gave up.
    Error {
        /// Why.
        message: String,
    },
    /// The answer to `--probe`.
    Capabilities {
        /// `bpy.app.version_string`.
        version: String,
        /// Built with OpenImageDenoise.
        oidn: bool,
        /// Cycles GPU backends with a device.
        #[serde(rename = "gpuBackends")]
        gpu_backends: Vec<String>,
    },
}

/// A file a compositor File Output node wrote.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompositeFile {
    /// The node's name.
    pub node: String,
    /// Where it is.
    pub path: String,
    /// Where the node wrote it, relative to its base path.
    pub relative_path: String,
    /// The view it was written for (multiview renders); empty otherwise.
    #[serde(default)]
    pub view: String,
}

/// One view's file of a frame (a multiview render writes a file per view).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ViewFile {
    /// The view's name (`left`, `right`, a custom view's).
    pub view: String,
    /// Where Blender wrote it.
    pub path: String,
}

/// How to start Blender.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    /// The Blender executable.
    pub blender: &'a Path,
    /// The scene file; `None` for a probe.
    pub scene: Option<&'a Path>,
    /// The driver script on disk.
    pub driver: &'a Path,
    /// The driver's argument: the task file, or `--probe`.
    pub task: &'a std::ffi::OsStr,
    /// Render threads; `None` lets Blender use every core.
    pub threads: Option<u32>,
    /// Blender's temporary directory: under the worker's, so that a killed Blender's leftovers
    /// are the worker's to clean, not the machine's `/tmp`.
    pub temp_dir: Option<&'a Path>,
}

/// Whether `blender` is a Python interpreter with the `bpy` module (PyPI's Blender) rather
/// than a Blender executable.
pub fn is_bpy_python(blender: &Path) -> bool {
    blender.file_name().and_then(|it| it.to_str()).is_some_and(|it| it.starts_with("python"))
}

impl Invocation<'_> {
    /// The command line. Options apply left to right, so the scene loads before the driver runs.
    pub fn command(&self) -> Command {
        let mut command = self.bare_command();
        if let Some(dir) = self.temp_dir {
            command.env("TMPDIR", dir);
        }
        command
    }

    fn bare_command(&self) -> Command {
        if is_bpy_python(self.blender) {
            let mut command = Command::new(self.blender);
            command.arg("-I").arg(self.driver);
            if let Some(scene) = self.scene {
                command.arg("--scene").arg(scene);
            }
            if let Some(threads) = self.threads {
                command.arg("--threads").arg(threads.to_string());
            }
            command.arg("--").arg(self.task);
            return command;
        }
        let mut command = Command::new(self.blender);
        command.args(["-b", "--disable-autoexec", "--factory-startup", "-noaudio"]);
        if let Some(scene) = self.scene {
            command.arg(scene);
        }
        if let Some(threads) = self.threads {
            command.arg("-t").arg(threads.to_string());
        }
        command.arg("--python").arg(self.driver).arg("--").arg(self.task);
        command
    }
}

/// What Blender printed: the tail for failure reports, the lines not yet sent to the server,
/// and how far the frame being rendered is.
#[derive(Debug, Default)]
struct Output {
    tail: VecDeque<String>,
    pending: VecDeque<String>,
    pending_bytes: usize,
    /// Lines dropped from `pending` since it was last taken (the server was not reached).
    dropped: usize,
    frame_progress: Option<f64>,
}

impl Output {
    fn push(&mut self, line: String) {
        let progress = sample_progress(&line);
        if progress.is_some() {
            self.frame_progress = progress;
        }
        // Cycles prints a line per sample: of a run of them, the last says it all.
        let replaces = |lines: &VecDeque<String>| {
            progress.is_some() && lines.back().is_some_and(|it| sample_progress(it).is_some())
        };
        if replaces(&self.tail) {
            self.tail.pop_back();
        } else if self.tail.len() == LOG_TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.clone());
        if replaces(&self.pending)
            && let Some(old) = self.pending.pop_back()
        {
            self.pending_bytes -= old.len() + 1;
        }
        self.pending_bytes += line.len() + 1;
        self.pending.push_back(line);
        while self.pending_bytes > PENDING_LOG_BYTES - 100
            && let Some(old) = self.pending.pop_front()
        {
            self.pending_bytes -= old.len() + 1;
            self.dropped += 1;
        }
    }

    fn take_pending(&mut self) -> Option<String> {
        if self.pending.is_empty() && self.dropped == 0 {
            return None;
        }
        let mut text = String::with_capacity(self.pending_bytes + 64);
        if self.dropped > 0 {
            text.push_str(&format!("[… {} lines of output lost on the way]\n", self.dropped));
        }
        for line in self.pending.drain(..) {
            text.push_str(&line);
            text.push('\n');
        }
        self.pending_bytes = 0;
        self.dropped = 0;
        Some(text)
    }
}

/// How far a frame is, from a Blender status line: Cycles' `| Sample 5/16`, EEVEE's
/// `| Rendering 5 / 64 samples`.
fn sample_progress(line: &str) -> Option<f64> {
    if !line.starts_with("Fra:") {
        return None;
    }
    let last = line.rsplit('|').next()?.trim();
    let fraction = if let Some(rest) = last.strip_prefix("Sample ") {
        rest.split([',', ' ']).next()?
    } else {
        last.strip_prefix("Rendering ")?.strip_suffix(" samples")?
    };
    let (done, total) = fraction.split_once('/')?;
    let (done, total): (f64, f64) = (done.trim().parse().ok()?, total.trim().parse().ok()?);
    (total > 0.0 && done >= 0.0).then(|| (done / total).min(1.0))
}

/// A running Blender.
pub struct RunningBlender {
    child: Child,
    stdin: Option<tokio::process::ChildStdin>,
    pgid: Option<i32>,
    events: mpsc::Receiver<DriverEvent>,
    output: Arc<Mutex<Output>>,
}

impl RunningBlender {
    /// Starts Blender in a new process group.
    pub fn spawn(invocation: &Invocation<'_>) -> std::io::Result<RunningBlender> {
        let mut command = invocation.command();
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0).kill_on_drop(true);
        // If the worker dies (SIGKILL, OOM), Blender must not render on as an orphan.
        // SAFETY: the closure runs between fork and exec and only calls prctl(2), which is
        // async-signal-safe; it allocates nothing and touches no locks.
        unsafe {
            command.pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from));
        }
        let mut child = command.spawn()?;
        let stdin = child.stdin.take();
        let pgid = child.id().map(|it| it as i32);
        let output = Arc::new(Mutex::new(Output::default()));
        let (tx, events) = mpsc::channel(256);
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(read_lines(stdout, output.clone(), Some(tx)));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(read_lines(stderr, output.clone(), None));
        }
        Ok(RunningBlender { child, stdin, pgid, events, output })
    }

    /// Sends one line to the driver (a warm session's next task).
    pub async fn send_line(&mut self, line: &str) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        let stdin = self.stdin.as_mut().ok_or_else(|| std::io::Error::other("Blender's input is closed"))?;
        stdin.write_all(line.as_bytes()).await?;
        stdin.write_all(b"\n").await?;
        stdin.flush().await
    }

    /// Clears the log, so that a task's reports show only its own lines.
    pub fn clear_log(&self) {
        if let Ok(mut output) = self.output.lock() {
            *output = Output::default();
        }
    }

    /// The output printed since the last call (for the attempt's log on the server).
    pub fn take_log(&self) -> Option<String> {
        self.output.lock().ok()?.take_pending()
    }

    /// Puts back output that could not be sent, before what came since.
    pub fn restore_log(&self, text: String) {
        if let Ok(mut output) = self.output.lock() {
            let since: Vec<String> = output.pending.drain(..).collect();
            output.pending_bytes = 0;
            for line in text.lines().map(str::to_string).chain(since) {
                output.push(line);
            }
        }
    }

    /// How far the frame being rendered is (0–1), once Blender said.
    pub fn frame_progress(&self) -> Option<f64> {
        self.output.lock().ok()?.frame_progress
    }

    /// The next driver event; `None` once Blender closed its output.
    pub async fn next_event(&mut self) -> Option<DriverEvent> {
        self.events.recv().await
    }

    /// Waits for Blender to exit.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// Stops Blender and everything it started: SIGTERM to the group, SIGKILL after a grace.
    pub async fn kill(&mut self) {
        if let Some(pgid) = self.pgid {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
            if tokio::time::timeout(TERM_GRACE, self.child.wait()).await.is_err() {
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            }
            // Children that ignored SIGTERM but outlived Blender itself.
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
        let _ = self.child.kill().await;
    }

    /// The last lines Blender printed, for failure reports.
    pub fn log_tail(&self) -> String {
        match self.output.lock() {
            Ok(output) => output.tail.iter().cloned().collect::<Vec<_>>().join("\n"),
            Err(_) => String::new(),
        }
    }
}

async fn read_lines(
    stream: impl AsyncRead + Unpin,
    output: Arc<Mutex<Output>>,
    events: Option<mpsc::Sender<DriverEvent>>,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(json) = line.strip_prefix(EVENT_PREFIX)
            && let Some(events) = &events
            && let Ok(event) = serde_json::from_str::<DriverEvent>(json)
        {
            if matches!(event, DriverEvent::Frame { .. })
                && let Ok(mut output) = output.lock()
            {
                output.frame_progress = None;
            }
            let _ = events.send(event).await;
            continue;
        }
        if let Ok(mut output) = output.lock() {
            output.push(line);
        }
    }
}

/// The Blender to use: `explicit` if given, else `blender` on `PATH`.
pub fn find(explicit: Option<&Path>) -> Result<std::path::PathBuf, String> {
    if let Some(path) = explicit {
        if path.is_file() {
            return Ok(path.to_path_buf());
        }
        return Err(format!("no Blender at {}", path.display()));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("blender");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err("Blender was not found on PATH: install it (`apt-get install blender` on Debian) or pass --blender PATH".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_events_parse() {
        let cases = [
            (
                r#"{"event": "frame", "frame": 3, "path": "/o/0003.png", "seconds": 0.5}"#,
                DriverEvent::Frame {
                    frame: 3,
                    path: "/o/0003.png".into(),
                    seconds: 0.5,
                    composites: vec![],
                    views: vec![],
                },
            ),
            (r#"{"event": "done"}"#, DriverEvent::Done),
            (r#"{"event": "error", "message": "no"}"#, DriverEvent::Error { message: "no".into() }),
        ];
        for (line, expected) in cases {
            assert_eq!(serde_json::from_str::<DriverEvent>(line).unwrap(), expected);
        }
    }

    #[test]
    fn sample_progress_is_read_from_cycles_and_eevee_status_lines() {
        let cycles = "Fra:1 Mem:11.23M (Peak 11.61M) | Time:00:00.31 | Remaining:00:00.27 | Mem:1.06M, Peak:1.07M | Scene, ViewLayer | Sample 4/16";
        assert_eq!(sample_progress(cycles), Some(0.25));
        let eevee = "Fra:3 Mem:30.09M (Peak 30.71M) | Time:00:01.12 | Rendering 32 / 64 samples";
        assert_eq!(sample_progress(eevee), Some(0.5));
        for other in [
            "Fra:1 Mem:11M | Time:00:00.01 | Synchronizing object | Cube",
            "Sample 1/2",
            "Fra:1 | Sample x/2",
            "Fra:1 | Sample 1/0",
        ] {
            assert_eq!(sample_progress(other), None, "{other}");
        }
    }

    #[test]
    fn sample_lines_collapse_and_pending_output_is_bounded() {
        let mut output = Output::default();
        output.push("Read blend: /s.blend".into());
        for sample in 1..=64 {
            output.push(format!("Fra:1 Mem:1M | Time:00:00.01 | Scene, ViewLayer | Sample {sample}/64"));
        }
        output.push("Saved: '/o/0001.png'".into());
        assert_eq!(output.frame_progress, Some(1.0));
        let sent = output.take_pending().unwrap();
        assert_eq!(
            sent.lines().collect::<Vec<_>>(),
            [
                "Read blend: /s.blend",
                "Fra:1 Mem:1M | Time:00:00.01 | Scene, ViewLayer | Sample 64/64",
                "Saved: '/o/0001.png'"
            ]
        );
        assert_eq!(output.take_pending(), None, "taken once");
        assert_eq!(output.tail.len(), 3);

        let line = "x".repeat(1000);
        for _ in 0..200 {
            output.push(line.clone());
        }
        let sent = output.take_pending().unwrap();
        assert!(sent.len() <= PENDING_LOG_BYTES, "{}", sent.len());
        assert!(sent.starts_with("[… "), "says that lines were lost");
        assert_eq!(output.tail.len(), LOG_TAIL_LINES);
    }

    #[test]
    fn blender_never_runs_scripts_from_the_file() {
        let invocation = Invocation {
            blender: Path::new("blender"),
            scene: Some(Path::new("s.blend")),
            driver: Path::new("d.py"),
            task: std::ffi::OsStr::new("t.json"),
            threads: Some(2),
            temp_dir: None,
        };
        let command = invocation.command();
        let args: Vec<_> = command.as_std().get_args().map(|it| it.to_string_lossy().into_owned()).collect();
        assert_eq!(
            args,
            [
                "-b",
                "--disable-autoexec",
                "--factory-startup",
                "-noaudio",
                "s.blend",
                "-t",
                "2",
                "--python",
                "d.py",
                "--",
                "t.json"
            ]
        );
        let module = Invocation { blender: Path::new("/opt/bpy/bin/python3"), ..invocation };
        let args: Vec<_> = module.command().as_std().get_args().map(|it| it.to_string_lossy().into_owned()).collect();
        assert_eq!(args, ["-I", "d.py", "--scene", "s.blend", "--threads", "2", "--", "t.json"]);
    }
}
