//! `orchard blender …`: the Blenders this machine offers to workers.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use orchard_worker::install;

#[derive(Debug, Subcommand)]
pub(super) enum BlenderCommand {
    /// List the Blenders a worker here offers by default: `blender` on PATH and installed ones.
    List,
    /// Install a Blender line from PyPI (`bpy` for Python 3.11: 4.2, 4.3, 4.4, 4.5, 5.0) into a
    /// private virtual environment; prints the interpreter to pass as `--blender` as the last line.
    Install(InstallArgs),
    /// Measure this machine's speed factor as a worker would (reference frames, median, outliers
    /// dropped), without a server; prints the factor and the spread of the frames' times.
    Speed(SpeedArgs),
}

#[derive(Debug, Args)]
pub(super) struct SpeedArgs {
    /// The Blender to measure with (default: `blender` on PATH).
    #[arg(long)]
    blender: Option<PathBuf>,
    /// Render threads, as the worker would use (default: every core).
    #[arg(long)]
    threads: Option<u32>,
}

#[derive(Debug, Args)]
pub(super) struct InstallArgs {
    /// `4.5` (newest 4.5.x) or an exact `4.5.3`.
    #[arg(value_name = "VERSION")]
    line: String,
    /// The Python 3.11 to build the environment with.
    #[arg(long, default_value = "python3")]
    python: PathBuf,
}

pub(super) async fn blender(command: BlenderCommand) -> anyhow::Result<ExitCode> {
    match command {
        BlenderCommand::List => {
            let mut any = false;
            if let Ok(path) = orchard_worker::blender::find(None) {
                println!("system     {}", path.display());
                any = true;
            }
            for (version, python) in install::installed(&install::root()) {
                println!("{version:<10} {}", python.display());
                any = true;
            }
            if !any {
                eprintln!("No Blender: install Debian's (`apt-get install blender`) or `orchard blender install 4.5`.");
                return Ok(ExitCode::from(2));
            }
        }
        BlenderCommand::Install(args) => {
            let root = install::root();
            eprintln!("Installing Blender {} into {} (a ~375 MB download)…", args.line, root.display());
            let version = args.line.clone();
            let python = args.python.clone();
            let interpreter = tokio::task::spawn_blocking(move || install::install(&root, &version, &python)).await??;
            println!("{}", interpreter.display());
        }
        BlenderCommand::Speed(args) => {
            let blender = orchard_worker::blender::find(args.blender.as_deref()).map_err(anyhow::Error::msg)?;
            // A fresh folder: a measurement now, not a worker's cached one.
            let dir = tempfile::tempdir()?;
            let driver =
                orchard_worker::Worker::<orchard_worker::remote::HttpCoordinator>::install_driver(dir.path()).await?;
            let build = orchard_worker::probe::probe(&blender, &driver, false).await?;
            let speed =
                orchard_worker::probe::speed_factor(&blender, &build, &driver, dir.path(), args.threads).await?;
            let spread = speed.spread.map_or(String::new(), |it| format!(" ±{:.1}%", it * 100.0));
            println!("Blender {}: speed factor {}{spread}", build.version, speed.factor);
        }
    }
    Ok(ExitCode::SUCCESS)
}
