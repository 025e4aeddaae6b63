//! `orchard jobs …`: a farm's jobs from the command line, one verb per action of the API.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use orchard_api::{Client, Job};

use super::farm::running_farm;

/// Which farm, and as whom.
#[derive(Debug, Clone, Args)]
pub(crate) struct FarmArgs {
    /// Server to use (default: the farm running on --data, found through DATA/farm.json).
    #[arg(long, env = "ORCHARD_SERVER")]
    server: Option<String>,
    /// API key for --server (default: the local farm's DATA/admin.key).
    #[arg(long, env = "ORCHARD_KEY", hide_env_values = true)]
    key: Option<String>,
    /// The data folder of a local `orchard up`.
    #[arg(long = "data", env = "ORCHARD_DATA", default_value = "./orchard-data")]
    data: PathBuf,
}

impl FarmArgs {
    /// A client of the farm these arguments name.
    pub(crate) async fn client(&self) -> anyhow::Result<Client> {
        if let Some(server) = &self.server {
            let key = self.key.clone().context("--server needs --key (or ORCHARD_KEY)")?;
            return Ok(Client::new(server, &key));
        }
        let url = running_farm(&self.data).await.with_context(|| {
            format!("no farm runs on {} (start one with `orchard up`, or give --server and --key)", self.data.display())
        })?;
        let key = match &self.key {
            Some(key) => key.clone(),
            None => {
                let path = self.data.join("admin.key");
                std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?
                    .trim()
                    .to_string()
            }
        };
        Ok(Client::new(&url, &key))
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum JobsCommand {
    /// The workspace's jobs, newest first.
    List {
        /// Only these statuses: one or a comma list (`rendering,suspended`).
        #[arg(long, default_value = "")]
        status: String,
        /// Page, from 1.
        #[arg(long, default_value_t = 1)]
        page: u32,
        /// Jobs per page, 1–100.
        #[arg(long, default_value_t = 20)]
        page_size: u32,
        #[command(flatten)]
        farm: FarmArgs,
    },
    /// One job: status, frames, why it waits or failed, and its tasks.
    Show {
        /// The job's id.
        id: String,
        #[command(flatten)]
        farm: FarmArgs,
    },
    /// Blender's log of a job's tasks: each task's latest attempt, or the one asked for.
    Logs {
        /// The job's id.
        id: String,
        /// Only this task: its number in the job (as `jobs show` lists it) or its id.
        #[arg(long)]
        task: Option<String>,
        /// This attempt of --task (1 is the first), not the latest.
        #[arg(long, requires = "task")]
        attempt: Option<i64>,
        /// Keep printing what Blender prints until the job stops rendering.
        #[arg(long, short, conflicts_with = "attempt")]
        follow: bool,
        #[command(flatten)]
        farm: FarmArgs,
    },
    /// Start no new task of a rendering job (running ones finish, or go back with --requeue-running).
    Suspend {
        /// The job's id.
        id: String,
        /// Stop the running tasks now and put them back in the queue.
        #[arg(long)]
        requeue_running: bool,
        #[command(flatten)]
        farm: FarmArgs,
    },
    /// Resume a suspended job where it was.
    Resume {
        /// The job's id.
        id: String,
        #[command(flatten)]
        farm: FarmArgs,
    },
    /// Render a finished job's failed or missing frames again (or those named), keeping the others.
    Retry {
        /// The job's id.
        id: String,
        /// Frames to render again, rendered or not: `3-5`, or a comma list.
        #[arg(long)]
        frames: Option<String>,
        #[command(flatten)]
        farm: FarmArgs,
    },
    /// Set a job's priority: 0–100, 50 by default, higher goes first.
    Priority {
        /// The job's id.
        id: String,
        /// The priority.
        #[arg(value_parser = clap::value_parser!(u32).range(0..=100))]
        priority: u32,
        #[command(flatten)]
        farm: FarmArgs,
    },
    /// Cancel a job: its tasks stop within seconds.
    Cancel {
        /// The job's id.
        id: String,
        #[command(flatten)]
        farm: FarmArgs,
    },
    /// Delete a job and its files (a running job is canceled first).
    Delete {
        /// The job's id.
        id: String,
        #[command(flatten)]
        farm: FarmArgs,
    },
    /// Download a job's finished frames to OUT/<job id>/ (also while it renders: those done so far).
    Download {
        /// The job's id.
        id: String,
        /// Where frames go: OUT/<job id>/.
        #[arg(long, default_value = "renders")]
        out: PathBuf,
        #[command(flatten)]
        farm: FarmArgs,
    },
}

pub(crate) async fn run(command: JobsCommand) -> anyhow::Result<ExitCode> {
    match command {
        JobsCommand::List { status, page, page_size, farm } => {
            let client = farm.client().await?;
            let list = client.list_jobs(page, page_size, &status).await?;
            let progress: std::collections::HashMap<String, orchard_api::Progress> =
                client.all_progress().await?.into_iter().map(|it| (it.job_id.clone(), it)).collect();
            println!("{:<36}  {:<11}  {:>9}  {:>3}  {:<24}  SCENE", "JOB", "STATUS", "FRAMES", "PRI", "CREATED");
            for job in &list.jobs {
                let frames =
                    progress.get(&job.id).map_or(String::new(), |it| format!("{}/{}", it.frames_done, it.frames_total));
                println!(
                    "{:<36}  {:<11}  {:>9}  {:>3}  {:<24}  {}",
                    job.id, job.status, frames, job.priority, job.created_at, job.scene_file.file_name
                );
            }
            let pages = list.pagination.total_pages.max(1);
            println!("page {} of {pages}, {} jobs", list.pagination.page, list.pagination.total);
        }
        JobsCommand::Show { id, farm } => {
            let client = farm.client().await?;
            let job = client.get_job(&id).await?;
            show(&job);
            if let Some(progress) = client.progress(&id).await?.first() {
                let eta = progress.eta_seconds.map_or(String::new(), |it| format!(", about {it:.0} s left"));
                println!(
                    "  frames {}/{} done, {} rendering ({} of them finished), {} failed{eta}",
                    progress.frames_done,
                    progress.frames_total,
                    progress.frames_rendering,
                    progress.frames_running_done,
                    progress.frames_failed
                );
            }
            for task in client.tasks(&id).await? {
                let worker = task.worker_name.as_deref().or(task.worker_id.as_deref()).unwrap_or("-");
                println!(
                    "  task {:>4}  frames {:<12}  {:<9}  attempt {}  worker {worker}",
                    task.seq,
                    task.frames.join(","),
                    task.status,
                    task.attempt
                );
                for failed in &task.failed_attempts {
                    let by = failed.worker_name.as_deref().unwrap_or(&failed.worker_id);
                    let first = failed.error.lines().next().unwrap_or("");
                    println!("             attempt {} failed on {by} at {}: {first}", failed.attempt, failed.at);
                }
            }
        }
        JobsCommand::Logs { id, task, attempt, follow, farm } => {
            let client = farm.client().await?;
            logs(&client, &id, task.as_deref(), attempt, follow).await?;
        }
        JobsCommand::Suspend { id, requeue_running, farm } => {
            show(&farm.client().await?.suspend(&id, requeue_running).await?)
        }
        JobsCommand::Resume { id, farm } => show(&farm.client().await?.resume(&id).await?),
        JobsCommand::Retry { id, frames, farm } => {
            let frames =
                frames.map(|it| it.split(',').map(|it| it.trim().to_string()).filter(|it| !it.is_empty()).collect());
            show(&farm.client().await?.retry(&id, frames).await?)
        }
        JobsCommand::Priority { id, priority, farm } => show(&farm.client().await?.set_priority(&id, priority).await?),
        JobsCommand::Cancel { id, farm } => show(&farm.client().await?.cancel(&id).await?),
        JobsCommand::Delete { id, farm } => {
            farm.client().await?.delete_job(&id).await?;
            println!("Deleted job {id}.");
        }
        JobsCommand::Download { id, out, farm } => {
            let client = farm.client().await?;
            let n = download(&client, &id, &out).await?;
            println!("{n} frames in {}", out.join(&id).display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A job in a few lines.
fn show(job: &Job) {
    println!("job {}  {}  priority {}", job.id, job.status, job.priority);
    println!("  scene {} ({} bytes)", job.scene_file.file_name, job.scene_file.file_size);
    if let Some(reason) = &job.waiting_reason {
        println!("  waiting: {reason}");
    }
    if let Some(reason) = &job.failed_reason {
        println!("  failed: {} ({}): {}", reason.name, reason.kind, reason.message.as_deref().unwrap_or(""));
    }
}

/// Downloads the job's finished frames into `out/<id>/`; returns how many.
pub(crate) async fn download(client: &Client, id: &str, out: &Path) -> anyhow::Result<usize> {
    let downloads = client.downloads(id).await?;
    let dir = out.join(id);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for output in &downloads.frame_outputs {
        // Names come from the server; keep only the last component.
        let name = Path::new(&output.file_name).file_name().context("an output has no file name")?;
        client.download(&output.url, &dir.join(name)).await?;
    }
    // The video, when the job asked for one (`--video`).
    let video = &downloads.transforms.video;
    if let (Some(url), Some(name)) = (video["url"].as_str(), video["fileName"].as_str()) {
        let name = Path::new(name).file_name().context("the video has no file name")?;
        client.download(url, &dir.join(name)).await?;
        println!("video: {}", dir.join(name).display());
    } else if let Some(error) = video["error"].as_str() {
        eprintln!("no video: {error}");
    }
    Ok(downloads.frame_outputs.len())
}

/// Prints the logs of `id`'s tasks (or of the one named), and with `follow` what they print
/// next, until the job stops rendering.
async fn logs(client: &Client, id: &str, only: Option<&str>, attempt: Option<i64>, follow: bool) -> anyhow::Result<()> {
    let picked = |tasks: Vec<orchard_api::TaskInfo>| -> anyhow::Result<Vec<orchard_api::TaskInfo>> {
        let Some(only) = only else { return Ok(tasks.into_iter().filter(|it| it.attempt > 0).collect()) };
        let found = tasks.into_iter().find(|it| it.id == only || it.seq.to_string() == only);
        Ok(vec![found.with_context(|| format!("job {id} has no task {only} (`orchard jobs show {id}` lists them)"))?])
    };
    // What was printed of each task: (attempt, text), so that following prints only what is new.
    let mut printed: std::collections::HashMap<String, (i64, String)> = std::collections::HashMap::new();
    let mut last_header = String::new();
    loop {
        let job = client.get_job(id).await?;
        let rendering = matches!(job.status.as_str(), "booting" | "rendering" | "suspended" | "finalizing");
        let tasks = picked(client.tasks(id).await?)?;
        if tasks.is_empty() && !follow {
            println!("job {id} has no task that ran yet ({})", job.status);
        }
        for task in &tasks {
            let log = client.task_log(id, &task.id, attempt).await?;
            let (number, text) = match &log {
                Some(log) => (log.attempt, log.text.as_str()),
                None if follow => continue,
                None => (attempt.unwrap_or(task.attempt), ""),
            };
            let before = printed.get(&task.id).filter(|(seen, _)| *seen == number).map(|(_, text)| text.as_str());
            let new = unseen(before.unwrap_or(""), text);
            if new.is_empty() && (follow || before.is_some()) {
                continue;
            }
            let header = format!(
                "== task {} · frames {} · attempt {number} · {} · {} ==",
                task.seq,
                task.frames.join(","),
                task.status,
                task.worker_name.as_deref().or(task.worker_id.as_deref()).unwrap_or("-")
            );
            if header != last_header || !follow {
                println!("{header}");
                last_header = header;
            }
            if log.is_none() {
                println!("(no output yet)");
            }
            print!("{new}");
            if !new.is_empty() && !new.ends_with('\n') {
                println!();
            }
            printed.insert(task.id.clone(), (number, text.to_string()));
        }
        if !follow || !rendering {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

/// The part of `now` not in `before`: a log grows at its end and, once long, loses its
/// beginning, so the new part follows the longest end of `before` that `now` starts with.
fn unseen<'a>(before: &str, now: &'a str) -> &'a str {
    for (at, _) in before.char_indices() {
        if now.starts_with(&before[at..]) {
            return &now[before.len() - at..];
        }
    }
    now
}

#[cfg(test)]
mod tests {
    use super::unseen;

    #[test]
    fn following_a_log_prints_only_what_is_new() {
        assert_eq!(unseen("", "a\n"), "a\n");
        assert_eq!(unseen("a\n", "a\nb\n"), "b\n");
        assert_eq!(unseen("a\nb\n", "a\nb\n"), "");
        // The log's start was dropped: what was printed last is found again.
        assert_eq!(unseen("a\nb\nc\n", "b\nc\nd\n"), "d\n");
        assert_eq!(unseen("zzz", "xyz"), "xyz", "nothing in common: all of it");
    }
}
