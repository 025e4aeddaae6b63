//! `orchard analyze FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use orchard_blend::{AnalyzeOptions, analyze_path};

#[derive(Debug, Args)]
pub(super) struct AnalyzeArgs {
    /// A .blend, or a .zip project (its main .blend is analysed).
    file: PathBuf,
    /// Print the analysis object as JSON (the `analysis` of a job).
    #[arg(long)]
    json: bool,
    /// Most bytes the analysis may decompress (a .blend's zstd, a .zip project's files): a
    /// decompression bomb stops here instead of at the machine's memory.
    #[arg(long, value_name = "BYTES", default_value_t = orchard_server::config::defaults::MAX_ANALYSIS_BYTES)]
    max_analysis_bytes: u64,
}

pub(super) fn analyze(args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    match print_analysis(args) {
        // `orchard analyze f | head` closing the pipe early is not an error.
        Err(error)
            if error.downcast_ref::<std::io::Error>().is_some_and(|it| it.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(ExitCode::SUCCESS)
        }
        other => other,
    }
}

fn print_analysis(args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let file_name = args.file.file_name().map(|it| it.to_string_lossy().into_owned()).unwrap_or_default();
    let options = AnalyzeOptions { max_decompressed_bytes: args.max_analysis_bytes };
    let analysis =
        analyze_path(&args.file, &file_name, &options).with_context(|| format!("{}", args.file.display()))?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&analysis)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let value = serde_json::to_value(&analysis)?;
    writeln!(
        out,
        "{} — Blender {} ({} compression), analysed in {} ms",
        file_name,
        value["blenderVersion"].as_str().unwrap_or("?"),
        value["compression"].as_str().unwrap_or("?"),
        value["durationMs"]
    )?;
    let active = value["activeScene"].as_str().unwrap_or("");
    for scene in value["scenes"].as_array().into_iter().flatten() {
        let config = &scene["renderConfig"];
        let marker = if scene["name"].as_str() == Some(active) { "*" } else { " " };
        writeln!(
            out,
            "{marker} scene {:?}: frames {}–{} step {}, {} {}×{} at {}%, {} samples, {} output, camera {}",
            scene["name"].as_str().unwrap_or(""),
            scene["frameStart"],
            scene["frameEnd"],
            scene["frameStep"],
            config["renderEngine"].as_str().unwrap_or("?"),
            config["resolution"][0],
            config["resolution"][1],
            config["resolutionPercentage"],
            config["sampleCount"],
            config["outputFormat"].as_str().unwrap_or("?"),
            scene["camera"].as_str().unwrap_or("none"),
        )?;
    }
    for dependency in value["dependencies"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "  {} {} ({})",
            dependency["kind"].as_str().unwrap_or(""),
            dependency["path"].as_str().unwrap_or(""),
            dependency["status"].as_str().unwrap_or("")
        )?;
    }
    for warning in value["warnings"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "warning[{}]: {}",
            warning["code"].as_str().unwrap_or(""),
            warning["message"].as_str().unwrap_or("")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
