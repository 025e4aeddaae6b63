//! Prints the analysis of a `.blend` or `.zip` as JSON:
//! `cargo run -p orchard-blend --example analyze -- FILE`.

use std::io::Write;
use std::path::Path;

use orchard_blend::{AnalyzeOptions, analyze_path};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(arg) = std::env::args().nth(1) else {
        return Err("usage: analyze FILE".into());
    };
    let path = Path::new(&arg);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let analysis = analyze_path(path, &name, &AnalyzeOptions::default())?;
    let json = serde_json::to_string_pretty(&analysis)?;
    // A closed pipe (`| head`) is not an error worth a panic.
    match writeln!(std::io::stdout().lock(), "{json}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
