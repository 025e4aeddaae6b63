//! `orchard worker` (a render node) and `orchard workers token …`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use orchard_worker::node::run_node;
use tokio_util::sync::CancellationToken;

use super::node::NodeArgs;
use super::{StorageArgs, shutdown_signal};

#[derive(Debug, Args)]
pub(super) struct WorkerArgs {
    /// The server's URL.
    #[arg(long, env = "ORCHARD_SERVER")]
    server: String,
    /// A worker token (`orchard workers token create`).
    #[arg(long, env = "ORCHARD_WORKER_TOKEN", hide_env_values = true)]
    token: String,
    /// Scene cache and scratch space; also keeps the worker's id across restarts
    /// (default: ~/.local/share/orchard/worker, or $XDG_DATA_HOME/orchard/worker).
    #[arg(long = "data", env = "ORCHARD_WORKER_DATA")]
    data: Option<PathBuf>,
    /// Name shown for this worker (default: the host name).
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    node: NodeArgs,
}

pub(super) async fn worker(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let data = match args.data.clone() {
        Some(data) => data,
        None => default_worker_data()?,
    };
    let options = args.node.options(&args.server, &args.token, data, args.name.clone())?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        stop.cancel();
    });
    run_node(options, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

/// Where a worker keeps its data unless told: the user's data directory, not the current one
/// (a worker started in a checkout must not leave its cache there).
fn default_worker_data() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_DATA_HOME").filter(|it| !it.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME").filter(|it| !it.is_empty());
            PathBuf::from(home.ok_or_else(|| anyhow::anyhow!("no HOME: pass --data DIR"))?).join(".local/share")
        }
    };
    Ok(base.join("orchard").join("worker"))
}

#[derive(Debug, Subcommand)]
pub(super) enum WorkersCommand {
    /// Worker tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The farm's workers: status (idle, busy, draining, offline), Blenders, speed, current task.
    List {
        #[command(flatten)]
        farm: super::jobs::FarmArgs,
    },
    /// Let a worker finish its task and take no new one (admin key).
    Drain {
        /// The worker's id or name.
        id: String,
        #[command(flatten)]
        farm: super::jobs::FarmArgs,
    },
    /// Let a drained worker take tasks again (admin key).
    Undrain {
        /// The worker's id or name.
        id: String,
        #[command(flatten)]
        farm: super::jobs::FarmArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum TokenCommand {
    /// Create a worker token; prints it, alone, as the last line (it is never shown again).
    Create(TokenArgs),
    /// List worker tokens (prefixes only) and how many workers use each.
    List(TokenArgs),
    /// Revoke a worker token by id or prefix: its workers are refused from then on (within a
    /// minute on a server that remembers it).
    Revoke(RevokeTokenArgs),
}

#[derive(Debug, Args)]
pub(super) struct RevokeTokenArgs {
    /// The token's id, or its prefix as `orchard workers token list` shows it.
    token: String,
    #[command(flatten)]
    storage: StorageArgs,
}

#[derive(Debug, Args)]
pub(super) struct TokenArgs {
    #[command(flatten)]
    storage: StorageArgs,
}

pub(super) async fn workers(command: WorkersCommand) -> anyhow::Result<ExitCode> {
    match command {
        WorkersCommand::Token(TokenCommand::Create(args)) => {
            std::fs::create_dir_all(&args.storage.data)?;
            let store = orchard_server::open_store(&args.storage.database_url()).await?;
            let token = orchard_server::keys::create_worker_token(store.as_ref()).await?;
            eprintln!("Created a worker token. It is shown once; pass it to `orchard worker --token`:");
            println!("{token}");
        }
        WorkersCommand::Token(TokenCommand::List(args)) => {
            let store = orchard_server::open_store(&args.storage.database_url()).await?;
            for token in store.list_worker_tokens().await? {
                let state = if token.revoked_at.is_some() { "revoked" } else { "active" };
                println!("{}  {}…  {} worker(s)  {state}", token.id, token.prefix, token.workers);
            }
        }
        WorkersCommand::Token(TokenCommand::Revoke(args)) => {
            let store = orchard_server::open_store(&args.storage.database_url()).await?;
            if !store.revoke_worker_token(&args.token, orchard_server::now_ms()).await? {
                eprintln!("no active worker token matches {:?}", args.token);
                return Ok(ExitCode::from(2));
            }
            println!("revoked");
        }
        WorkersCommand::List { farm } => {
            println!(
                "{:<36}  {:<20}  {:<8}  {:>6}  {:<20}  {:<6}  TASK",
                "WORKER", "NAME", "STATUS", "SPEED", "BLENDER", "VIDEO"
            );
            for worker in farm.client().await?.list_workers().await?.workers {
                let blenders: Vec<&str> = worker.blenders.iter().map(|it| it.version.as_str()).collect();
                let task = worker.current_task.map_or(String::new(), |it| {
                    format!(
                        "{} frames {}",
                        it.job_id.unwrap_or_else(|| "(another workspace)".into()),
                        it.frames.join(",")
                    )
                });
                // Whether it makes videos (it has an ffmpeg).
                let video = if worker.ffmpeg.is_some() { "yes" } else { "no" };
                println!(
                    "{:<36}  {:<20}  {:<8}  {:>6.2}  {:<20}  {:<6}  {task}",
                    worker.id,
                    worker.name,
                    worker.status,
                    worker.speed_factor,
                    blenders.join(","),
                    video
                );
            }
        }
        WorkersCommand::Drain { id, farm } => {
            farm.client().await?.drain(&id, true).await?;
            println!("Worker {id} is draining: it finishes its task and takes no new one.");
        }
        WorkersCommand::Undrain { id, farm } => {
            farm.client().await?.drain(&id, false).await?;
            println!("Worker {id} takes tasks again.");
        }
    }
    Ok(ExitCode::SUCCESS)
}
