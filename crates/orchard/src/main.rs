//! `orchard`: one binary for the whole farm. Each subcommand lives in `cli/`; they parse
//! flags and call the library crates.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // `analyze` is synchronous and measured in milliseconds: no runtime to start for it.
    let result = match cli::run_sync(args) {
        Ok(result) => result,
        Err(args) => run_async(*args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run_async(args: cli::Cli) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("could not start the async runtime: {e}"))?;
    runtime.block_on(cli::run(args))
}
