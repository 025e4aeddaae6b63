//! Comparing an analysis with Blender's truth (`<name>.truth.json`, written by
//! `fixtures/make_fixtures.py` inside Blender), field by field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use orchard_blend::{AnalyzeOptions, analyze_path};
use serde_json::Value;

use super::fixture;

/// Every `*.truth.json` under a version folder (the `deps/` fixture lives in a sub-folder with the
/// files it refers to).
pub(crate) fn truth_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())).flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(".truth.json") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The compared leaves of an analysis object, keyed by a readable path. Scenes are keyed by name,
/// dependencies by kind, library and path (their status is the value), warnings by code and path
/// (their count is the value).
fn leaves(v: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for key in ["fileName", "compression", "blenderVersion", "fileVersion", "minBlenderVersion", "activeScene"] {
        flatten(key, &v[key], &mut out);
    }
    let scenes = v["scenes"].as_array().cloned().unwrap_or_default();
    out.insert("scenes.count".into(), scenes.len().into());
    for (i, s) in scenes.iter().enumerate() {
        let name = s["name"].as_str().unwrap_or("");
        out.insert(format!("scenes[{name}].index"), i.into());
        for key in ["frameStart", "frameEnd", "frameStep", "camera", "fps", "renderConfig", "outputPath", "viewLayers"]
        {
            flatten(&format!("scenes[{name}].{key}"), &s[key], &mut out);
        }
    }
    for d in v["dependencies"].as_array().cloned().unwrap_or_default() {
        let lib = d["library"].as_str().map(|l| format!(" in {l}")).unwrap_or_default();
        let key =
            format!("dependencies[{} {}{lib}]", d["kind"].as_str().unwrap_or(""), d["path"].as_str().unwrap_or(""));
        out.insert(key, d["status"].clone());
    }
    for w in v["warnings"].as_array().cloned().unwrap_or_default() {
        let key = format!("warnings[{} {}]", w["code"].as_str().unwrap_or(""), w["path"].as_str().unwrap_or("-"));
        let count = out.get(&key).and_then(Value::as_u64).unwrap_or(0) + 1;
        out.insert(key, count.into());
    }
    out
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                flatten(&format!("{prefix}.{k}"), child, out);
            }
        }
        Value::Array(items) => {
            out.insert(format!("{prefix}.len"), items.len().into());
            for (i, child) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), child, out);
            }
        }
        leaf => {
            out.insert(prefix.to_string(), leaf.clone());
        }
    }
}

fn same(got: &Value, want: &Value) -> bool {
    match (got.as_f64(), want.as_f64()) {
        (Some(g), Some(w)) if got.is_f64() || want.is_f64() => (g - w).abs() <= 1e-9 * w.abs().max(1.0),
        _ => got == want,
    }
}

/// Files and fields compared so far.
#[derive(Default)]
pub(crate) struct Tally {
    pub files: usize,
    pub fields: usize,
    pub matched: usize,
    pub diffs: Vec<String>,
}

impl Tally {
    pub(crate) fn summary(&self, label: &str) -> String {
        format!(
            "{label}: {} files, {}/{} fields match ({:.2}%)",
            self.files,
            self.matched,
            self.fields,
            100.0 * self.matched as f64 / self.fields.max(1) as f64
        )
    }
}

/// Compares the analysis of `file` with the truth at `truth_path`, adding to the tally.
pub(crate) fn compare(truth_path: &Path, file: Option<&Path>, tally: &mut Tally) {
    let text = std::fs::read_to_string(truth_path).unwrap_or_else(|e| panic!("{}: {e}", truth_path.display()));
    let mut want: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", truth_path.display()));
    let file_name = want["fileName"].as_str().unwrap_or("").to_string();
    let file = file.map(Path::to_path_buf).unwrap_or_else(|| truth_path.with_file_name(&file_name));
    let analysis = analyze_path(&file, &file_name, &AnalyzeOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let got = serde_json::to_value(&analysis).unwrap_or_else(|e| panic!("{e}"));
    // Blender has no API for GLOB.minversion: the generator reads it with BAT when BAT is there.
    if want["minBlenderVersion"].is_null() {
        want["minBlenderVersion"] = got["minBlenderVersion"].clone();
    }
    let (got, want) = (leaves(&got), leaves(&want));
    let label = truth_path.strip_prefix(fixture("")).unwrap_or(truth_path).display().to_string();
    tally.files += 1;
    for (key, w) in &want {
        tally.fields += 1;
        match got.get(key) {
            Some(g) if same(g, w) => tally.matched += 1,
            Some(g) => tally.diffs.push(format!("{label}: {key}: reader {g}, Blender {w}")),
            None => tally.diffs.push(format!("{label}: {key}: missing from the reader, Blender {w}")),
        }
    }
    for key in got.keys().filter(|k| !want.contains_key(*k)) {
        tally.fields += 1;
        tally.diffs.push(format!("{label}: {key}: reported by the reader ({}) but not by Blender", got[key]));
    }
}
