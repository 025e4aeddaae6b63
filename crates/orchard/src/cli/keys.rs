//! `orchard keys …`: API keys, straight in the database (no server needed).

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::StorageArgs;

#[derive(Debug, Subcommand)]
pub(super) enum KeysCommand {
    /// Create a key; prints it, alone, as the last line (it is never shown again).
    Create(CreateArgs),
    /// List keys (prefixes only).
    List(ListArgs),
    /// Revoke a key by id or prefix.
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub(super) struct CreateArgs {
    /// Workspace of the key; created if new.
    #[arg(long)]
    workspace: String,
    /// User of the key within the workspace; created if new.
    #[arg(long, default_value = "api")]
    user: String,
    /// An admin key: sees and steers the whole farm (every workspace's jobs, all workers, drain).
    #[arg(long)]
    admin: bool,
    #[command(flatten)]
    storage: StorageArgs,
}

#[derive(Debug, Args)]
pub(super) struct ListArgs {
    #[command(flatten)]
    storage: StorageArgs,
}

#[derive(Debug, Args)]
pub(super) struct RevokeArgs {
    /// The key's id, or its prefix as `keys list` shows it.
    key: String,
    #[command(flatten)]
    storage: StorageArgs,
}

pub(super) async fn keys(command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Create(args) => {
            std::fs::create_dir_all(&args.storage.data)?;
            let store = orchard_server::open_store(&args.storage.database_url()).await?;
            let (key, _) =
                orchard_server::keys::create_key_as(store.as_ref(), &args.workspace, &args.user, args.admin).await?;
            eprintln!("Created a key for user {:?} in workspace {:?}. It is shown once:", args.user, args.workspace);
            println!("{key}");
        }
        KeysCommand::List(args) => {
            let store = orchard_server::open_store(&args.storage.database_url()).await?;
            for key in store.list_keys().await? {
                let state = match (key.revoked_at, key.admin) {
                    (Some(_), _) => "revoked",
                    (None, true) => "active, admin",
                    (None, false) => "active",
                };
                println!("{}  {}…  {}/{}  {}", key.id, key.prefix, key.workspace, key.user, state);
            }
        }
        KeysCommand::Revoke(args) => {
            let store = orchard_server::open_store(&args.storage.database_url()).await?;
            if !store.revoke_key(&args.key, orchard_server::now_ms()).await? {
                eprintln!("no active key matches {:?}", args.key);
                return Ok(ExitCode::from(2));
            }
            println!("revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Subcommand)]
pub(super) enum WorkspacesCommand {
    /// Set a workspace's share of the farm: its weight when several workspaces wait (1 each by
    /// default; 2 takes twice the frames of a workspace of 1 before yielding).
    Share(ShareArgs),
    /// Set how long a workspace's finished jobs keep their files (outputs, archives, scene):
    /// DAYS, `forever`, or `default` (the server's --retention-days).
    Retention(RetentionArgs),
}

#[derive(Debug, Args)]
pub(super) struct RetentionArgs {
    /// The workspace's name.
    workspace: String,
    /// Days (above 0), `forever`, or `default`.
    #[arg(value_parser = retention_days)]
    days: Retention,
    #[command(flatten)]
    storage: StorageArgs,
}

#[derive(Debug, Clone, Copy)]
enum Retention {
    Days(u32),
    Forever,
    Default,
}

fn retention_days(text: &str) -> Result<Retention, String> {
    match text {
        "forever" => Ok(Retention::Forever),
        "default" => Ok(Retention::Default),
        _ => match text.parse::<u32>() {
            Ok(days) if (1..=36500).contains(&days) => Ok(Retention::Days(days)),
            _ => Err(format!("{text:?} is not a number of days (1 to 36500), `forever` or `default`")),
        },
    }
}

#[derive(Debug, Args)]
pub(super) struct ShareArgs {
    /// The workspace's name.
    workspace: String,
    /// Its weight, above 0 (at most 1000).
    #[arg(value_parser = share_weight)]
    share: f64,
    #[command(flatten)]
    storage: StorageArgs,
}

fn share_weight(text: &str) -> Result<f64, String> {
    let share: f64 = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
    if !(share.is_finite() && share > 0.0 && share <= 1000.0) {
        return Err("a share is a number above 0 and at most 1000".into());
    }
    Ok(share)
}

pub(super) async fn workspaces(command: WorkspacesCommand) -> anyhow::Result<ExitCode> {
    match command {
        WorkspacesCommand::Share(args) => {
            let store = orchard_server::open_store(&args.storage.database_url()).await?;
            if !store.set_share(&args.workspace, args.share).await? {
                eprintln!(
                    "no workspace is named {:?} (workspaces are made with `orchard keys create`)",
                    args.workspace
                );
                return Ok(ExitCode::from(2));
            }
            println!("workspace {} has a share of {}", args.workspace, args.share);
        }
        WorkspacesCommand::Retention(args) => {
            let store = orchard_server::open_store(&args.storage.database_url()).await?;
            let seconds = match args.days {
                Retention::Days(days) => Some(i64::from(days) * 86_400),
                Retention::Forever => Some(0),
                Retention::Default => None,
            };
            if !store.set_retention(&args.workspace, seconds).await? {
                eprintln!(
                    "no workspace is named {:?} (workspaces are made with `orchard keys create`)",
                    args.workspace
                );
                return Ok(ExitCode::from(2));
            }
            let said = match args.days {
                Retention::Days(days) => format!("for {days} days after they finish"),
                Retention::Forever => "forever".into(),
                Retention::Default => "as long as the server's --retention-days says".into(),
            };
            println!("workspace {}'s finished jobs keep their files {said}", args.workspace);
        }
    }
    Ok(ExitCode::SUCCESS)
}
