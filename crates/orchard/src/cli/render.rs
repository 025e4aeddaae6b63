//! `orchard render FILE`: the whole Renderjuice flow from the command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use orchard_api::{Client, Job};
use serde_json::{Value, json};

use super::StorageArgs;
use super::farm::{Farm, admin_key, running_farm};
use super::node::NodeArgs;

#[derive(Debug, Args)]
pub(super) struct RenderArgs {
    /// The .blend or .zip project to render.
    file: PathBuf,
    /// Frames to render: `1-10`, `7`, `1-250x5`, or a comma list of those (default: the scene's range).
    #[arg(long)]
    frames: Option<String>,
    /// Server to use (default: a local `orchard up`, else an embedded farm in this process).
    #[arg(long, env = "ORCHARD_SERVER")]
    server: Option<String>,
    /// API key for --server.
    #[arg(long, env = "ORCHARD_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Where frames go: OUT/<job id>/.
    #[arg(long, default_value = "renders")]
    out: PathBuf,
    /// Samples (overrides the scene's).
    #[arg(long)]
    samples: Option<u32>,
    /// Resolution as WIDTHxHEIGHT (overrides the scene's).
    #[arg(long)]
    resolution: Option<String>,
    /// Resolution percentage (overrides the scene's).
    #[arg(long)]
    percentage: Option<u32>,
    /// Any other `requestedRenderConfig` fields, as a JSON object.
    #[arg(long, value_name = "JSON")]
    config: Option<String>,
    /// Return once the render has started (print the job id; `orchard jobs show/download` follow it).
    #[arg(long)]
    detach: bool,
    /// Refuse a scene whose analysis found dependency problems (missing files, absolute paths,
    /// paths out of the project, unreadable libraries): nothing renders, and the job is deleted.
    #[arg(long)]
    strict: bool,
    /// The main .blend inside a .zip (default: the shallowest, then alphabetical).
    #[arg(long)]
    main_file: Option<String>,
    /// Upload the .blend alone, even when it links libraries or uses files beside it (by
    /// default those are packed with it into a .zip project, as the analysis finds them).
    #[arg(long)]
    no_pack: bool,
    /// Also make an H.264 MP4 of the frames, with the scene's sound (`transforms.video`; a
    /// worker with ffmpeg makes it), downloaded beside them.
    #[arg(long)]
    video: bool,
    /// Colour management preset: `default` or `aces`.
    #[arg(long, default_value = "default")]
    color_management: String,
    /// Files larger than this many MiB are uploaded in parts of this size (one PUT to S3
    /// stops at 5 GiB; parts also keep a failed transfer small).
    #[arg(long, value_name = "MIB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    upload_part_mib: u64,
    /// Embedded farm: its state directory (also where a local `orchard up` keeps admin.key).
    #[command(flatten)]
    storage: StorageArgs,
    /// Embedded farm: its worker.
    #[command(flatten)]
    node: NodeArgs,
}

pub(super) async fn render(args: RenderArgs) -> anyhow::Result<ExitCode> {
    let file = args.file.clone();
    let file_name = file.file_name().map(|it| it.to_string_lossy().into_owned()).context("the file has no name")?;
    let file_type = match file.extension().and_then(|it| it.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("blend") => "blend",
        Some("zip") => "zip",
        _ => anyhow::bail!("{} is neither a .blend nor a .zip", file.display()),
    };
    std::fs::metadata(&file).with_context(|| format!("{}", file.display()))?;
    let config = requested_config(&args)?;
    // Kept until the upload is done: the packed project lives in it.
    let packing = tempfile::tempdir()?;
    let scene = match file_type {
        "blend" if !args.no_pack => packed(&file, &file_name, packing.path()).await?,
        _ => Scene { path: file.clone(), name: file_name, file_type, main_file: args.main_file.clone() },
    };
    let (client, farm) = connect(&args).await?;
    let result = run_flow(&client, &args, &scene, config).await;
    if let Some(farm) = farm {
        farm.shutdown().await;
    }
    result
}

fn requested_config(args: &RenderArgs) -> anyhow::Result<Value> {
    let mut config = match &args.config {
        Some(text) => serde_json::from_str::<Value>(text).context("--config is not a JSON object")?,
        None => json!({}),
    };
    if !config.is_object() {
        anyhow::bail!("--config must be a JSON object");
    }
    config["colorManagementPreset"] = json!(args.color_management);
    if let Some(frames) = &args.frames {
        let ranges: Vec<&str> = frames.split(',').map(str::trim).filter(|it| !it.is_empty()).collect();
        config["frameRanges"] = json!(ranges);
    }
    if let Some(samples) = args.samples {
        config["sampleCount"] = json!(samples);
    }
    if let Some(resolution) = &args.resolution {
        let (w, h) = resolution
            .split_once(['x', 'X'])
            .and_then(|(w, h)| Some((w.trim().parse::<u32>().ok()?, h.trim().parse::<u32>().ok()?)))
            .context("--resolution must look like 1920x1080")?;
        config["resolution"] = json!([w, h]);
    }
    if let Some(percentage) = args.percentage {
        config["resolutionPercentage"] = json!(percentage);
    }
    if args.video {
        config["video"] = json!(true);
    }
    Ok(config)
}

/// A client of the farm to render on, and the embedded farm started for it if any.
async fn connect(args: &RenderArgs) -> anyhow::Result<(Client, Option<Farm>)> {
    if let Some(server) = &args.server {
        let key = args.key.clone().context("--server needs --key (or ORCHARD_KEY)")?;
        return Ok((Client::new(server, &key), None));
    }
    // A local `orchard up` on this data folder, on whatever port, with its admin key.
    if let Some(url) = running_farm(&args.storage.data).await
        && let Ok(key) = std::fs::read_to_string(args.storage.data.join("admin.key"))
    {
        eprintln!("Using the farm at {url}.");
        return Ok((Client::new(&url, key.trim()), None));
    }
    let blenders = args.node.blenders()?;
    let mut config = orchard_server::ServerConfig::new("127.0.0.1:0".parse()?, args.storage.data.clone());
    config.database_url = args.storage.database_url.clone();
    config.storage = args.storage.storage.clone();
    let farm = Farm::start(config, 1, &args.node).await?;
    let (key, _) = admin_key(&farm.server, &args.storage.data).await?;
    eprintln!("Started an embedded farm (Blender: {}).", blenders[0].display());
    let client = Client::new(&farm.server.url(), &key);
    Ok((client, Some(farm)))
}

fn bar(len: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// What is uploaded: the file given, or the project packed from it.
struct Scene {
    path: PathBuf,
    name: String,
    file_type: &'static str,
    main_file: Option<String>,
}

/// The `.blend` at `file`, with what it links and uses packed into a `.zip` project in `dir`
/// when it needs anything beside it (relative paths kept, outside files mapped inside).
async fn packed(file: &Path, file_name: &str, dir: &Path) -> anyhow::Result<Scene> {
    use orchard_blend::{AnalyzeOptions, pack};
    let alone = Scene { path: file.to_path_buf(), name: file_name.to_string(), file_type: "blend", main_file: None };
    let main = file.to_path_buf();
    // What stays missing or outside, the farm's analysis of the upload says (as warnings).
    let plan = match tokio::task::spawn_blocking(move || pack::plan(&main, &AnalyzeOptions::default())).await? {
        Ok(plan) => plan,
        // Not a .blend this reader can follow: the farm's validation will say why.
        Err(error) => {
            eprintln!("warning: not packed ({error}); uploading the file alone");
            return Ok(alone);
        }
    };
    if plan.is_single_file() {
        return Ok(alone);
    }
    let total = plan.total_bytes();
    let rewritten: usize = plan.files.values().map(|it| it.rewrites.len()).sum();
    eprintln!(
        "Packing {} with {} files it uses ({:.1} MiB{}) into a project.",
        file_name,
        plan.files.len() - 1,
        total as f64 / 1048576.0,
        if rewritten > 0 { format!(", {rewritten} outside paths remapped") } else { String::new() }
    );
    let stem = file_name.strip_suffix(".blend").unwrap_or(file_name);
    let zip = dir.join(format!("{stem}.zip"));
    let pack_bar = bar(total, "pack    [{bar:30}] {bytes}/{total_bytes}");
    let (shown, target, main_file) = (pack_bar.clone(), zip.clone(), plan.main_file.clone());
    tokio::task::spawn_blocking(move || {
        pack::write(&plan, &target, &AnalyzeOptions::default(), &mut |done| shown.set_position(done))
    })
    .await??;
    pack_bar.finish();
    Ok(Scene { path: zip, name: format!("{stem}.zip"), file_type: "zip", main_file: Some(main_file) })
}

async fn run_flow(client: &Client, args: &RenderArgs, scene: &Scene, config: Value) -> anyhow::Result<ExitCode> {
    let size = std::fs::metadata(&scene.path).with_context(|| format!("{}", scene.path.display()))?.len();
    let upload_bar = bar(size, "upload  [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}");
    let shown = upload_bar.clone();
    let slug = client
        .upload_file(&scene.name, scene.file_type, &scene.path, args.upload_part_mib << 20, move |sent| {
            shown.set_position(sent)
        })
        .await?;
    upload_bar.finish();

    let job = client.create_job_with(&slug, scene.main_file.as_deref()).await?;
    // The id first: whatever happens to this terminal, the job can be found again.
    println!("Job {} on {}", job.id, client.base());
    let job = client.validate(&job.id).await?;
    if job.status == "failed" {
        return Ok(report_failure(&job));
    }
    let mut problems = 0;
    for warning in job.analysis.iter().flat_map(|it| &it.warnings) {
        let code = serde_json::to_value(warning.code).ok().and_then(|it| it.as_str().map(str::to_string));
        eprintln!("warning[{}]: {}", code.unwrap_or_default(), warning.message);
        if is_dependency_problem(warning.code) {
            problems += 1;
        }
    }
    if args.strict && problems > 0 {
        client.delete_job(&job.id).await?;
        eprintln!("--strict: not rendered ({problems} dependency problem(s) above); job {} deleted.", job.id);
        return Ok(ExitCode::from(1));
    }
    let job = client.render(&job.id, config).await?;
    let job_id = job.id.clone();
    if args.detach {
        println!(
            "Rendering. Follow it with `orchard jobs show {job_id}`; fetch the frames with `orchard jobs download {job_id}`."
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut report = Report::new();
    let started = std::time::Instant::now();
    // One listener for the whole wait: a Ctrl-C that arrives while a request is in flight is
    // kept for the next look, never lost.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    // The farm says when the job changes (its event stream); without it, polling.
    let mut events = client.events(None).await.ok();
    let mut last_progress: Option<orchard_api::Progress> = None;
    let finished = loop {
        let look = async {
            let changed = match events.as_mut() {
                Some(stream) => tokio::time::timeout(QUIET_REFRESH, next_about(stream, &job_id)).await,
                None => {
                    tokio::time::sleep(POLL).await;
                    Ok(true)
                }
            };
            if let Ok(false) = changed {
                // The stream ended (the server restarts, a proxy cut it): poll from now on.
                events = None;
            }
            let job = client.get_job(&job_id).await?;
            let progress = client.progress(&job_id).await?.into_iter().next();
            anyhow::Ok((job, progress))
        };
        let (job, progress) = tokio::select! {
            looked = look => looked?,
            _ = interrupt.recv() => {
                report.stop();
                return interrupted(client, &job_id, &args.out).await;
            }
        };
        // A finished job has no counters any more: the last ones, all done when it completed.
        let progress = match progress {
            Some(progress) => Some(progress),
            None => last_progress.take().map(|mut it: orchard_api::Progress| {
                if job.status == "completed" {
                    it.frames_done = it.frames_total;
                    it.frames_running_done = 0;
                    it.frames_running_progress = 0.0;
                    it.frames_rendering = 0;
                }
                it
            }),
        };
        report.update(&job, progress.as_ref(), started.elapsed());
        last_progress = progress;
        if matches!(job.status.as_str(), "completed" | "failed" | "canceled") {
            break job;
        }
    };
    report.stop();
    if finished.status != "completed" {
        return Ok(report_failure(&finished));
    }
    let n = super::jobs::download(client, &job_id, &args.out).await?;
    println!("{n} frames in {}", args.out.join(&job_id).display());
    Ok(ExitCode::SUCCESS)
}

/// How often `orchard render` polls the farm when it has no event stream.
const POLL: Duration = Duration::from_millis(500);
/// With the event stream: a look this long after the last event anyway (elapsed time, ETA,
/// why a job waits, which change without an event).
const QUIET_REFRESH: Duration = Duration::from_secs(2);

/// Waits for an event about `job_id`: true when one came, false when the stream ended.
async fn next_about(stream: &mut orchard_api::EventStream, job_id: &str) -> bool {
    while let Some(event) = stream.next().await {
        match event {
            Ok(event) if event.data["jobId"] == job_id => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// Ctrl-C while waiting: at a terminal, asks whether to cancel the job or leave it rendering;
/// elsewhere cancels it. The frames finished so far are downloaded either way.
async fn interrupted(client: &Client, job_id: &str, out: &Path) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal;
    let cancel = if std::io::stdin().is_terminal() {
        eprint!("\nCancel job {job_id}? [y/N] (no: it keeps rendering) ");
        let answer = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map(|_| line)
        })
        .await??;
        answer.trim().eq_ignore_ascii_case("y")
    } else {
        true
    };
    if cancel {
        client.cancel(job_id).await?;
        eprintln!("Canceled job {job_id}.");
    } else {
        eprintln!("Job {job_id} keeps rendering: `orchard jobs show {job_id}`, `orchard jobs download {job_id}`.");
    }
    let n = super::jobs::download(client, job_id, out).await?;
    eprintln!("{n} finished frames in {}", out.join(job_id).display());
    Ok(ExitCode::from(if cancel { 1 } else { 0 }))
}

/// How progress is shown: a bar at a terminal, a line per change elsewhere (no ANSI codes in
/// a redirected log).
enum Report {
    Bar(ProgressBar),
    Lines { last: String },
}

impl Report {
    fn new() -> Report {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            Report::Bar(bar(0, "render  [{bar:30}] {msg}"))
        } else {
            Report::Lines { last: String::new() }
        }
    }

    fn update(&mut self, job: &Job, progress: Option<&orchard_api::Progress>, elapsed: Duration) {
        // Frames finished inside running tasks count too, and the frames in flight by their
        // samples: a long task, or a long frame, moves before it completes. In tenths of a frame.
        let (done, total, rendering) = progress.map_or((0, 0, 0), |it| {
            let done = it.frames_done as f64 + it.frames_running_progress.max(it.frames_running_done as f64);
            ((done.max(0.0) * 10.0).floor() as u64, it.frames_total.max(0) as u64 * 10, it.frames_rendering.max(0))
        });
        let frames = if done % 10 == 0 { format!("{}", done / 10) } else { format!("{}.{}", done / 10, done % 10) };
        let mut message = format!("{frames}/{} frames, {}", total / 10, job.status);
        if rendering > 0 {
            message.push_str(&format!(" ({rendering} in flight)"));
        }
        message.push_str(&format!(", {}", clock(elapsed.as_secs_f64())));
        if let Some(eta) = progress.and_then(|it| it.eta_seconds).filter(|_| job.status != "completed") {
            message.push_str(&format!(", ~{} left", clock(eta)));
        }
        if let Some(reason) = &job.waiting_reason {
            message.push_str(&format!(" — waiting: {reason}"));
        }
        match self {
            Report::Bar(bar) => {
                bar.set_length(total);
                bar.set_position(done);
                bar.set_message(message);
            }
            Report::Lines { last } => {
                // Elapsed time changes every poll: a line when anything else does (progress
                // within a frame in tenths, so a long frame prints a few lines, not one a second).
                let state = format!("{done}/{total} {rendering} {} {:?}", job.status, job.waiting_reason);
                if *last != state {
                    eprintln!("render {message}");
                    *last = state;
                }
            }
        }
    }

    fn stop(&self) {
        if let Report::Bar(bar) = self {
            bar.abandon();
        }
    }
}

/// `1:05` or `1:02:05`.
fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// A warning that means the farm would not render what the artist sees.
fn is_dependency_problem(code: orchard_blend::WarningCode) -> bool {
    use orchard_blend::WarningCode as W;
    matches!(code, W::MissingDependency | W::AbsolutePath | W::OutsideProject | W::UnreadableLibrary)
}

fn report_failure(job: &Job) -> ExitCode {
    match &job.failed_reason {
        Some(reason) => eprintln!(
            "Job {} {}: {} ({})\n{}",
            job.id,
            job.status,
            reason.name,
            reason.kind,
            reason.message.as_deref().unwrap_or("")
        ),
        None => eprintln!("Job {} {}.", job.id, job.status),
    }
    ExitCode::from(1)
}
