//! `orchard addon`: the Blender add-on this Orchard carries (the same zip the farm serves at
//! `/addon.zip`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(super) enum AddonCommand {
    /// Write the add-on's zip (default: ~/.local/share/orchard/orchard-addon.zip) and print its
    /// path, to install from Blender's preferences: Add-ons > Install (3.4–4.1), or Get
    /// Extensions > Install from Disk (4.2+).
    Path {
        /// Where to write it instead.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub(super) fn addon(command: AddonCommand) -> anyhow::Result<ExitCode> {
    let AddonCommand::Path { out } = command;
    let path = match out {
        Some(path) => path,
        None => default_path(),
    };
    if let Some(folder) = path.parent().filter(|it| !it.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    }
    std::fs::write(&path, orchard_server::addon::zip()).with_context(|| format!("writing {}", path.display()))?;
    println!("{}", std::path::absolute(&path)?.display());
    Ok(ExitCode::SUCCESS)
}

/// `$XDG_DATA_HOME/orchard/orchard-addon.zip`, beside the Blenders `orchard blender install` keeps.
fn default_path() -> PathBuf {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("orchard/orchard-addon.zip")
}
