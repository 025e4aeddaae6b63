//! `orchard gc`: report, and reclaim, the stored files no record refers to.

use std::process::ExitCode;

use clap::Args;

use super::StorageArgs;

#[derive(Debug, Args)]
pub(super) struct GcArgs {
    /// Report only: delete nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    storage: StorageArgs,
}

pub(super) async fn gc(args: GcArgs) -> anyhow::Result<ExitCode> {
    let store = orchard_server::open_store(&args.storage.database_url()).await?;
    let mut config = orchard_server::ServerConfig::new(super::DEFAULT_LISTEN.parse()?, args.storage.data.clone());
    config.storage = args.storage.storage.clone();
    let blobs = orchard_server::open_blobs(&config)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let report =
        orchard_server::gc::collect(store.as_ref(), &blobs, !args.dry_run, now, orchard_server::gc::GRACE).await?;
    let mib = |bytes: u64| bytes as f64 / 1048576.0;
    let garbage: u64 = report.unreferenced.iter().map(|it| it.1).sum();
    for (key, size) in &report.unreferenced {
        println!("{:>10}  {key}", size);
    }
    println!(
        "{} files, {:.1} MiB stored; {:.1} MiB referenced; {} files ({:.1} MiB) nothing refers to: {}",
        report.files,
        mib(report.bytes),
        mib(report.referenced_bytes),
        report.unreferenced.len(),
        mib(garbage),
        if args.dry_run { "kept (--dry-run)" } else { "deleted" }
    );
    Ok(ExitCode::SUCCESS)
}
