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
