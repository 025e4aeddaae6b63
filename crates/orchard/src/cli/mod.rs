//! Command-line interface. Exit codes: 0 ok, 1 the job failed or was canceled, 2 usage or
//! infrastructure error.

mod addon;
mod analyze;
mod blender;
mod farm;
mod gc;
mod jobs;
mod keys;
mod node;
mod render;
mod up;
mod webhooks;
mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Orchard: a self-hosted render farm for Blender that speaks the Renderjuice API.
///
/// Start with `orchard render scene.blend`: it renders on an embedded farm (or on a running
/// `orchard up`) and downloads the frames to ./renders/<job>/.
#[derive(Debug, Parser)]
#[command(name = "orchard", version, propagate_version = true)]
pub(crate) struct Cli {
    /// Log format: `text` for people, `json` for log collectors.
    #[arg(long, global = true, env = "ORCHARD_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// All in one: server and local workers on SQLite and a local folder. Prints the URL and,
    /// on first start, an admin API key (also kept in DATA/admin.key).
    Up(up::UpArgs),
    /// Server only: API, scheduler and background duties.
    Serve(up::ServeArgs),
    /// A render node: registers with a server, pulls tasks, runs Blender, uploads frames.
    Worker(worker::WorkerArgs),
    /// Render nodes: list, drain, undrain, and their tokens.
    #[command(subcommand)]
    Workers(worker::WorkersCommand),
    /// Upload a .blend or .zip, render it, and download the frames to ./renders/<job>/.
    Render(render::RenderArgs),
    /// Analyse a .blend or .zip natively (no Blender) and print what a render would use.
    Analyze(analyze::AnalyzeArgs),
    /// The farm's jobs: list, show, suspend, resume, retry, priority, cancel, delete, download.
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
    /// Workspaces: their share of the farm when several wait.
    #[command(subcommand)]
    Workspaces(keys::WorkspacesCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// List or install the Blenders workers offer.
    #[command(subcommand)]
    Blender(blender::BlenderCommand),
    /// Webhook endpoints of the workspace: add, list, remove, rotate, deliveries.
    #[command(subcommand)]
    Webhooks(webhooks::WebhooksCommand),
    /// Report and delete the stored files no record refers to (lost attempts' frames, leftovers
    /// of crashes), older than an hour; --dry-run reports only.
    Gc(gc::GcArgs),
    /// The Blender add-on: `orchard addon path` writes its zip and prints where.
    #[command(subcommand)]
    Addon(addon::AddonCommand),
}

/// Where the server keeps its state; shared by every command that opens it.
#[derive(Debug, Clone, Args)]
pub(crate) struct StorageArgs {
    /// Data directory: the SQLite database and stored files live here by default.
    #[arg(long = "data", env = "ORCHARD_DATA", default_value = "./orchard-data")]
    pub data: PathBuf,
    /// Metadata database: `sqlite://PATH` (default: DATA/orchard.db), or `postgres://USER@HOST/DB`
    /// for a database several servers share.
    #[arg(long, env = "ORCHARD_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Blob storage: `file://DIR` (default: DATA/storage), or `s3://BUCKET[/PREFIX]` with the
    /// standard AWS_* variables (AWS_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_ALLOW_HTTP).
    #[arg(long, env = "ORCHARD_STORAGE")]
    pub storage: Option<String>,
}

impl StorageArgs {
    /// The database URL in effect.
    pub(crate) fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| orchard_server::config::defaults::database_url(&self.data))
    }
}

/// Default address of `orchard up` and `orchard serve`.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:7800";

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|e| format!("{text:?} is not an address like 127.0.0.1:7800: {e}"))
}

/// Resolves at Ctrl-C or SIGTERM: when a long-running command should stop.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(term) => { term.recv().await; } None => std::future::pending().await } } => {}
    }
}

fn init_logs(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORCHARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Runs the commands that need no async runtime; hands the others back.
pub(crate) fn run_sync(cli: Cli) -> Result<anyhow::Result<ExitCode>, Box<Cli>> {
    match cli.command {
        // No log subscriber: nothing on the analysis path logs (`orchard-blend` has no `tracing`),
        // and setting one up is a measurable part of a run that takes a few milliseconds.
        Command::Analyze(args) => Ok(analyze::analyze(args)),
        command => Err(Box::new(Cli { log_format: cli.log_format, command })),
    }
}

/// Runs a parsed command line.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Up(args) => {
            init_logs(cli.log_format, "info,tower_http=warn");
            up::up(args).await
        }
        Command::Serve(args) => {
            init_logs(cli.log_format, "info,tower_http=warn");
            up::serve(args).await
        }
        Command::Worker(args) => {
            init_logs(cli.log_format, "info");
            worker::worker(args).await
        }
        Command::Workers(command) => {
            init_logs(cli.log_format, "warn");
            worker::workers(command).await
        }
        Command::Render(args) => {
            // The progress bars and the final report say what matters; logs would garble them.
            init_logs(cli.log_format, "error");
            render::render(args).await
        }
        Command::Analyze(args) => {
            init_logs(cli.log_format, "warn");
            analyze::analyze(args)
        }
        Command::Blender(command) => {
            init_logs(cli.log_format, "warn");
            blender::blender(command).await
        }
        Command::Jobs(command) => {
            init_logs(cli.log_format, "warn");
            jobs::run(command).await
        }
        Command::Workspaces(command) => {
            init_logs(cli.log_format, "warn");
            keys::workspaces(command).await
        }
        Command::Keys(command) => {
            init_logs(cli.log_format, "warn");
            keys::keys(command).await
        }
        Command::Webhooks(command) => {
            init_logs(cli.log_format, "warn");
            webhooks::run(command).await
        }
        Command::Addon(command) => addon::addon(command),
        Command::Gc(args) => {
            init_logs(cli.log_format, "warn");
            gc::gc(args).await
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
