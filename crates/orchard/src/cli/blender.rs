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
    }
    Ok(ExitCode::SUCCESS)
}
