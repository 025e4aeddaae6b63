//! End to end with real Blender: the `orchard` binary as a user runs it.
//!
//! These need Blender on PATH. Without it they report a skip, unless
//! `ORCHARD_REQUIRE_E2E=1` (set by the test script and CI), where a missing Blender fails.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should panic right there

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

use serde_json::{Value, json};

#[tokio::test]
async fn a_job_renders_three_frames_with_real_blender() {
    if !blender_available() {
        return;
    }
    let farm = LocalFarm::start();
    let client = farm.client();
    let id = submit(
        &client,
        json!({
            "colorManagementPreset": "default", "frameRanges": ["1-3"], "resolution": [64, 48],
            "resolutionPercentage": 100, "renderEngine": "CYCLES", "sampleCount": 2, "denoisingEnabled": false
        }),
    )
    .await;
    let job = eventually("the job to complete", Duration::from_secs(180), || async {
        let job = client.get_job(&id).await.unwrap();
        assert!(!matches!(job.status.as_str(), "failed" | "canceled"), "{:?}", job.failed_reason);
        (job.status == "completed").then_some(job)
    })
    .await;

    let downloads = client.downloads(&id).await.unwrap();
    assert_eq!(downloads.frames.len(), 3);
    let names: Vec<_> = downloads.frame_outputs.iter().map(|it| it.file_name.as_str()).collect();
    assert_eq!(names, ["frame_0001.png", "frame_0002.png", "frame_0003.png"], "the scene's own name");
    for url in &downloads.frames {
        let image = image::load_from_memory(&fetch(url).await).expect("a frame decodes");
        assert_eq!((image.width(), image.height()), (64, 48), "{url}");
    }
    let preview = image::load_from_memory(&fetch(job.preview_url.as_deref().expect("a preview")).await).unwrap();
    assert!(preview.width() > 0 && preview.width() <= 64);
    let zip_bytes = fetch(&downloads.transforms.frames_zip).await;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).expect("framesZip opens");
    assert_eq!(archive.len(), 3);
    let mut first = Vec::new();
    archive.by_name("frame_0001.png").unwrap().read_to_end(&mut first).unwrap();
    assert_eq!(image::load_from_memory(&first).unwrap().width(), 64);
    assert_eq!(client.progress(&id).await.unwrap().len(), 0, "no progress once completed");
    assert!(job.normalized_seconds > 0.0);
    // The Blender that rendered it, as the worker reported it (`3.4.1`, or `4.5.x` from PyPI).
    assert_eq!(job.blender_versions.len(), 1, "{:?}", job.blender_versions);
    assert!(job.blender_versions[0].starts_with(['3', '4']), "{:?}", job.blender_versions);

    let error = client.cancel(&id).await.unwrap_err();
    assert!(matches!(error, orchard_api::ClientError::Api { status, .. } if status == 400), "{error}");
}

#[tokio::test]
async fn cancel_stops_blender_and_leaves_no_process() {
    if !blender_available() {
        return;
    }
    let farm = LocalFarm::start();
    let client = farm.client();
    // Far more samples than the test will wait for.
    let id = submit(
        &client,
        json!({
            "colorManagementPreset": "default", "frameRanges": ["1-2"], "resolution": [640, 480],
            "resolutionPercentage": 100, "sampleCount": 100000, "denoisingEnabled": false
        }),
    )
    .await;
    eventually("Blender to start rendering", Duration::from_secs(60), || async {
        let job = client.get_job(&id).await.unwrap();
        (job.status == "rendering" && !farm.blender_processes().is_empty()).then_some(())
    })
    .await;
    let job = client.cancel(&id).await.unwrap();
    assert_eq!(job.status, "canceled");
    eventually("every Blender process to exit", Duration::from_secs(20), || async {
        farm.blender_processes().is_empty().then_some(())
    })
    .await;
    assert_eq!(client.get_job(&id).await.unwrap().status, "canceled");
    assert!(client.downloads(&id).await.unwrap().frames.is_empty());
}

#[tokio::test]
async fn a_python_client_using_only_the_documented_calls_renders() {
    if !blender_available() {
        return;
    }
    let farm = LocalFarm::start();
    let output = Command::new("python3")
        .arg(repo_root().join("tests/python/renderjuice_flow.py"))
        .env("RJ_BASE_URL", format!("{}/api/external/v1", farm.url))
        .env("RJ_API_KEY", &farm.key)
        .env("RJ_SCENE", example_scene())
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("0 failed"), "{stdout}");
}

#[test]
fn render_command_renders_on_an_embedded_farm() {
    if !blender_available() {
        return;
    }
    let cwd = tempfile::tempdir().unwrap();
    let output = orchard()
        .current_dir(cwd.path())
        .args(["render", "--frames", "1-2", "--resolution", "64x48", "--samples", "2", "--threads", "2"])
        .arg(example_scene())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let renders = cwd.path().join("renders");
    let job_dir = std::fs::read_dir(&renders).unwrap().next().unwrap().unwrap().path();
    let mut frames: Vec<_> = std::fs::read_dir(&job_dir).unwrap().map(|it| it.unwrap().file_name()).collect();
    frames.sort();
    assert_eq!(frames, ["frame_0001.png", "frame_0002.png"]);
    let image = image::open(job_dir.join("frame_0001.png")).unwrap();
    assert_eq!((image.width(), image.height()), (64, 48));
}

#[test]
fn analyze_prints_the_analysis_object_and_refuses_garbage() {
    let output = orchard().args(["analyze", "--json"]).arg(example_scene()).output().unwrap();
    assert!(output.status.success());
    let analysis: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(analysis["activeScene"], "Scene");
    assert_eq!(analysis["scenes"][0]["renderConfig"]["renderEngine"], "CYCLES");

    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.blend");
    std::fs::write(&garbage, b"definitely not a blend").unwrap();
    let output = orchard().args(["analyze", "--json"]).arg(&garbage).output().unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    assert!(!output.stderr.is_empty());
}

#[test]
fn keys_create_prints_the_key_as_the_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let output =
        orchard().args(["keys", "create", "--workspace", "studio", "--data"]).arg(dir.path()).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let key = stdout.lines().last().unwrap();
    assert!(key.starts_with("RJ-") && key.len() > 40, "{stdout}");
    let listed = orchard().args(["keys", "list", "--data"]).arg(dir.path()).output().unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(listed.contains("studio/api") && listed.contains(&key[..11]) && !listed.contains(key), "{listed}");
}

#[test]
fn a_second_farm_on_one_data_folder_is_refused_and_says_where_the_first_is() {
    if !blender_available() {
        return;
    }
    let farm = LocalFarm::start();
    let output = orchard()
        .args(["up", "--listen", "127.0.0.1:0", "--workers", "1", "--data"])
        .arg(farm.data.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("another Orchard farm runs on") && stderr.contains(&farm.url), "{stderr}");
}

/// `orchard render`, `orchard jobs …` against the `orchard up` of `farm` (found through its
/// data folder, on a port no one named), with stdout and stderr as pipes.
fn cli(farm: &LocalFarm, args: &[&str]) -> std::process::Output {
    orchard().args(args).arg("--data").arg(farm.data.path()).stdin(Stdio::null()).output().unwrap()
}

#[tokio::test]
async fn a_detached_render_is_followed_and_fetched_with_the_jobs_commands() {
    if !blender_available() {
        return;
    }
    let farm = LocalFarm::start();
    let scene = example_scene();
    let config = r#"{"resolution": [64, 48], "sampleCount": 2, "denoisingEnabled": false}"#;
    let output = cli(&farm, &["render", scene.to_str().unwrap(), "--frames", "1-2", "--config", config, "--detach"]);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    // The job id comes first, with the farm's URL.
    let first = stdout.lines().next().unwrap();
    let id =
        first.strip_prefix("Job ").and_then(|it| it.split_whitespace().next()).unwrap_or_else(|| panic!("{stdout}"));
    assert!(first.ends_with(&farm.url), "{first}");
    let id = id.to_string();

    let listed = String::from_utf8_lossy(&cli(&farm, &["jobs", "list"]).stdout).to_string();
    assert!(listed.contains(&id), "{listed}");
    let client = farm.client();
    eventually("the detached job to complete", Duration::from_secs(180), || async {
        let job = client.get_job(&id).await.unwrap();
        assert!(!matches!(job.status.as_str(), "failed" | "canceled"), "{:?}", job.failed_reason);
        (job.status == "completed").then_some(())
    })
    .await;
    let shown = String::from_utf8_lossy(&cli(&farm, &["jobs", "show", &id]).stdout).to_string();
    assert!(shown.contains("completed") && shown.contains("task"), "{shown}");
    // What Blender printed, task by task.
    let logs = String::from_utf8_lossy(&cli(&farm, &["jobs", "logs", &id]).stdout).to_string();
    assert!(logs.starts_with("== task 0 · frames 1 · attempt 1 · completed"), "{logs}");
    assert!(logs.contains("Fra:1") && logs.contains("Fra:2"), "{logs}");

    let out = tempfile::tempdir().unwrap();
    let fetched = cli(&farm, &["jobs", "download", &id, "--out", out.path().to_str().unwrap()]);
    assert!(fetched.status.success(), "{}", String::from_utf8_lossy(&fetched.stderr));
    for name in ["frame_0001.png", "frame_0002.png"] {
        let frame = image::open(out.path().join(&id).join(name)).expect("a downloaded frame decodes");
        assert_eq!((frame.width(), frame.height()), (64, 48));
    }

    let set = String::from_utf8_lossy(&cli(&farm, &["jobs", "priority", &id, "70"]).stdout).to_string();
    assert!(set.contains("priority 70"), "{set}");
    let deleted = cli(&farm, &["jobs", "delete", &id]);
    assert!(deleted.status.success(), "{}", String::from_utf8_lossy(&deleted.stderr));
    let gone = cli(&farm, &["jobs", "show", &id]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("404"), "{}", String::from_utf8_lossy(&gone.stderr));
}

#[test]
fn a_render_that_cannot_start_says_why_in_plain_lines_and_ctrl_c_cancels_it() {
    if !blender_available() {
        return;
    }
    let farm = LocalFarm::start();
    let scene = example_scene();
    // No worker has 4 TiB of memory: the job waits, and says so.
    let mut child = orchard()
        .args(["render", scene.to_str().unwrap(), "--frames", "1", "--config", r#"{"minimumRam": 4096}"#, "--data"])
        .arg(farm.data.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read on a thread, so that a silent render fails the test at the deadline instead of
    // blocking it.
    let (lines, stderr) = std::sync::mpsc::channel();
    let pipe = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = stderr.recv_timeout(left) else {
            let _ = child.kill();
            panic!("no waiting reason: {seen:#?}");
        };
        // Before the farm's worker has registered (it measures its speed first, slow on a
        // busy machine) the reason is that none is connected; after, its RAM. Either says why.
        let found = line.contains("waiting:");
        seen.push(line);
        if found {
            break;
        }
    }
    let waiting = seen.last().unwrap();
    assert!(waiting.starts_with("render 0/1 frames"), "{seen:#?}");
    assert!(waiting.contains("RAM") || waiting.contains("no worker is connected"), "{seen:#?}");
    assert!(seen.iter().all(|it| !it.contains('\u{1b}')), "no terminal codes in a pipe: {seen:#?}");
    signal(child.id(), nix::sys::signal::Signal::SIGINT);
    // Bounded: a render that ignored the interrupt must fail the test, not hang it.
    let stop_by = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > stop_by {
            let _ = child.kill();
            panic!("orchard render ignored SIGINT: {seen:#?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success(), "interrupted without a terminal: canceled");
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let id = stdout.lines().next().and_then(|it| it.strip_prefix("Job ")).and_then(|it| it.split_whitespace().next());
    let id = id.unwrap_or_else(|| panic!("{stdout}")).to_string();
    let rest: Vec<String> = stderr.iter().collect();
    assert!(rest.iter().any(|it| it.contains(&format!("Canceled job {id}"))), "{rest:#?}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let job = runtime.block_on(farm.client().get_job(&id)).unwrap();
    assert_eq!(job.status, "canceled");
}

#[test]
fn at_a_terminal_ctrl_c_asks_and_detaching_keeps_the_job_and_its_frames() {
    if !blender_available() {
        return;
    }
    let farm = LocalFarm::start();
    let scene = example_scene();
    // A pseudo-terminal, as a user's shell gives: stdin, stdout and stderr are a terminal.
    let pty = nix::pty::openpty(None, None).unwrap();
    let terminal = || Stdio::from(pty.slave.try_clone().unwrap());
    let out = tempfile::tempdir().unwrap();
    let config = r#"{"resolution": [64, 48], "sampleCount": 16, "denoisingEnabled": false, "chunkSize": 1}"#;
    let mut child = orchard()
        .args(["render", scene.to_str().unwrap(), "--frames", "1-40", "--config", config, "--out"])
        .arg(out.path())
        .arg("--data")
        .arg(farm.data.path())
        .stdin(terminal())
        .stdout(terminal())
        .stderr(terminal())
        .spawn()
        .unwrap();
    drop(pty.slave);
    let (chunks, screen) = std::sync::mpsc::channel::<String>();
    let mut reader = std::fs::File::from(pty.master.try_clone().unwrap());
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n @ 1..) = reader.read(&mut buffer) {
            let _ = chunks.send(String::from_utf8_lossy(&buffer[..n]).into_owned());
        }
    });
    let mut seen = String::new();
    let mut wait_for = |what: &str, done: &dyn Fn(&str) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !done(&seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match screen.recv_timeout(left) {
                Ok(chunk) => seen.push_str(&chunk),
                Err(_) => panic!("no {what} on the terminal: {seen:?}"),
            }
        }
        seen.clone()
    };
    let shown = wait_for("job id", &|it| it.contains("Job ") && it.contains(&farm.url));
    let id = shown.split("Job ").nth(1).and_then(|it| it.split_whitespace().next()).unwrap().to_string();
    let client = farm.client();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(eventually("a first frame", Duration::from_secs(120), || async {
        let progress = client.progress(&id).await.ok()?;
        (progress.first()?.frames_done >= 1).then_some(())
    }));
    wait_for("progress bar", &|it| it.contains("frames, rendering"));
    // It follows the job on the farm's event stream, not by polling.
    let metrics =
        runtime.block_on(async { reqwest::get(format!("{}/metrics", farm.url)).await.unwrap().text().await.unwrap() });
    assert!(metrics.lines().any(|it| it == "orchard_event_subscribers 1"), "{metrics}");
    signal(child.id(), nix::sys::signal::Signal::SIGINT);
    wait_for("question", &|it| it.contains(&format!("Cancel job {id}? [y/N]")));
    let mut keyboard = std::fs::File::from(pty.master);
    std::io::Write::write_all(&mut keyboard, b"n\n").unwrap();
    let stop_by = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < stop_by, "orchard render did not return after the answer: {seen:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "detached: {seen:?}");
    let seen = wait_for("download", &|it| it.contains("finished frames in"));
    assert!(seen.contains(&format!("Job {id} keeps rendering")), "{seen:?}");
    let job = runtime.block_on(client.get_job(&id)).unwrap();
    assert!(matches!(job.status.as_str(), "rendering" | "finalizing" | "completed"), "not canceled: {}", job.status);
    let fetched = std::fs::read_dir(out.path().join(&id)).unwrap().count();
    assert!(fetched >= 1, "the frames finished before Ctrl-C are downloaded");
    runtime.block_on(client.cancel(&id)).ok();
}

#[test]
fn a_scene_linking_a_library_is_packed_and_renders_what_the_artist_sees() {
    if !blender_available() {
        return;
    }
    let farm = LocalFarm::start();
    // examples/linked: the shot links a red plane from //../assets/props.blend, outside its
    // folder. Uploaded alone it would render black; packed, every pixel is the library's red.
    let disk = tempfile::tempdir().unwrap();
    let project = disk.path().join("linked");
    for dir in ["shots", "assets"] {
        std::fs::create_dir_all(project.join(dir)).unwrap();
    }
    for file in ["shots/shot.blend", "assets/props.blend"] {
        std::fs::copy(repo_root().join("examples/linked").join(file), project.join(file)).unwrap();
    }
    // A second shot names the library by its absolute path: packed under _external/, remapped.
    let absolute = project.join("shots/absolute.blend");
    let library = project.join("assets/props.blend");
    let script = format!(
        "import bpy; bpy.data.libraries[0].filepath = {library:?}; \
         bpy.ops.wm.save_as_mainfile(filepath={absolute:?}, relative_remap=False)",
        library = library.to_str().unwrap(),
        absolute = absolute.to_str().unwrap()
    );
    let saved = Command::new("blender")
        .args(["-b", "--factory-startup", "--disable-autoexec"])
        .arg(project.join("shots/shot.blend"))
        .args(["--python-expr", &script])
        .output()
        .unwrap();
    assert!(saved.status.success(), "{}", String::from_utf8_lossy(&saved.stderr));
    let client = farm.client();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The relative path keeps its layout (the archive's root holds both folders); the absolute
    // one leaves the shot at the root and the library under _external/.
    for (scene, main_file, remapped) in
        [("shot.blend", "shots/shot.blend", false), ("absolute.blend", "absolute.blend", true)]
    {
        let out = disk.path().join("renders");
        let output = orchard()
            .args(["render", "--frames", "1", "--out"])
            .arg(&out)
            .arg("--data")
            .arg(farm.data.path())
            .arg(project.join("shots").join(scene))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(stderr.contains(&format!("Packing {scene} with 1 files it uses")), "{stderr}");
        assert_eq!(stderr.contains("1 outside paths remapped"), remapped, "{stderr}");
        assert!(!stderr.contains("warning["), "nothing missing or outside once packed: {stderr}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let id =
            stdout.lines().next().and_then(|it| it.strip_prefix("Job ")).and_then(|it| it.split_whitespace().next());
        let id = id.unwrap_or_else(|| panic!("{stdout}"));
        let job = runtime.block_on(client.get_job(id)).unwrap();
        assert_eq!((job.scene_file.file_type.as_str(), job.scene_file.main_file.as_deref()), ("zip", Some(main_file)));
        let frame = image::open(out.join(id).join("0001.png")).unwrap().to_rgb8();
        for (x, y) in [(32, 24), (2, 2), (61, 45)] {
            let [r, g, b] = frame.get_pixel(x, y).0;
            assert!(r > 200 && g < 30 && b < 30, "{scene}: the library's red at ({x}, {y}), got {r} {g} {b}");
        }
    }
    // Every pixel is the library's red: one colour. Flagged only among frames that are not
    // (none here), and a failure when the job asks for it.
    let output = orchard()
        .args(["render", "--frames", "1", "--config", r#"{"failOnBlank": true}"#, "--out"])
        .arg(disk.path().join("renders"))
        .arg("--data")
        .arg(farm.data.path())
        .arg(project.join("shots/shot.blend"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("is blank: every pixel is one colour"), "{stderr}");
    // The artist's files are as they were.
    for file in ["shots/shot.blend", "assets/props.blend"] {
        assert_eq!(
            std::fs::read(project.join(file)).unwrap(),
            std::fs::read(repo_root().join("examples/linked").join(file)).unwrap()
        );
    }
}

#[tokio::test]
async fn compositor_file_outputs_are_delivered_with_their_names_and_never_written_outside() {
    if !blender_available() {
        return;
    }
    // examples/compositor: "Beauty" writes two PNG slots under //passes/beauty/, "Layers" a
    // multilayer EXR under /tmp/orchard-outside/, which must not be honoured.
    let outside = std::path::Path::new("/tmp/orchard-outside");
    let _ = std::fs::remove_dir_all(outside);
    let farm = LocalFarm::start();
    let client = farm.client();
    let scene = repo_root().join("examples/compositor/compositor.blend");
    let config = json!({"colorManagementPreset": "default", "frameRanges": ["1-2"], "chunkSize": 1});
    let id = submit_file(&client, &scene, config).await;
    let job = finished(&client, &id, Duration::from_secs(180)).await;
    assert_eq!(job.status, "completed", "{:?}", job.failed_reason);
    let downloads = client.downloads(&id).await.unwrap();
    let mut seen: Vec<(String, String, String)> = downloads
        .composite_node_outputs
        .iter()
        .map(|it| (it.composite_node_name.clone(), it.relative_path.clone(), it.file_name.clone()))
        .collect();
    seen.sort();
    let expected: Vec<(String, String, String)> = [
        ("Beauty", "beauty/alpha_0001.png", "alpha_0001.png"),
        ("Beauty", "beauty/alpha_0002.png", "alpha_0002.png"),
        ("Beauty", "beauty/rgb_0001.png", "rgb_0001.png"),
        ("Beauty", "beauty/rgb_0002.png", "rgb_0002.png"),
        ("Layers", "layers_0001.exr", "layers_0001.exr"),
        ("Layers", "layers_0002.exr", "layers_0002.exr"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(seen, expected);
    assert_eq!(downloads.composite_nodes.len(), 6, "the legacy URL list too");
    // The frames keep the scene's own name (`//renders/shot_###`).
    let frames: Vec<&str> = downloads.frame_outputs.iter().map(|it| it.file_name.as_str()).collect();
    assert_eq!(frames, ["shot_001.png", "shot_002.png"]);
    let zip = fetch(&downloads.transforms.frames_zip).await;
    let archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut in_zip: Vec<String> = archive.file_names().map(|it| it.unwrap().to_string()).collect();
    in_zip.sort();
    assert_eq!(in_zip, ["shot_001.png", "shot_002.png"]);
    // And a contact sheet of them, labelled.
    let sheet = downloads.transforms.contact_sheet.as_ref().expect("a contact sheet");
    let sheet = image::load_from_memory(&fetch(&sheet.url).await).expect("the contact sheet decodes");
    assert_eq!(sheet.width(), 4 + 2 * (160 + 4), "two frames side by side");
    for output in &downloads.composite_node_outputs {
        let bytes = fetch(&output.url).await;
        if output.file_name.ends_with(".png") {
            let image = image::load_from_memory(&bytes).expect("a compositor PNG decodes");
            assert_eq!((image.width(), image.height()), (64, 48));
        } else {
            assert_eq!(&bytes[..4], &[0x76, 0x2f, 0x31, 0x01], "an OpenEXR file");
        }
    }
    // The archive keeps the tree: node, then the path the node wrote.
    let zip = fetch(&downloads.transforms.composite_nodes_zip).await;
    let archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut names: Vec<String> = archive.file_names().map(|it| it.unwrap().to_string()).collect();
    names.sort();
    assert_eq!(names[0], "Beauty/beauty/alpha_0001.png");
    assert!(names.contains(&"Layers/layers_0002.exr".to_string()), "{names:?}");
    assert_eq!(names.len(), 6);
    assert!(!outside.exists(), "nothing written where the .blend said, outside the task's folder");
}

#[tokio::test]
async fn strict_refuses_a_scene_with_missing_files_and_leaves_no_job() {
    if !blender_available() {
        return;
    }
    let farm = LocalFarm::start();
    let scene = repo_root().join("crates/blend/tests/fixtures/v3_4/deps/deps.blend");
    let output = cli(&farm, &["render", scene.to_str().unwrap(), "--strict"]);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("warning[missing_dependency]") && stderr.contains("--strict: not rendered"), "{stderr}");
    let jobs = farm.client().list_jobs(1, 10, "").await.unwrap();
    assert_eq!(jobs.pagination.total, 0, "the refused job was deleted");
}

/// Whether ffmpeg and ffprobe run here; with `ORCHARD_REQUIRE_E2E=1` their absence fails.
fn ffmpeg_available() -> bool {
    let runs = |tool: &str| Command::new(tool).arg("-version").output().is_ok_and(|it| it.status.success());
    let found = runs("ffmpeg") && runs("ffprobe");
    if !found {
        assert!(std::env::var("ORCHARD_REQUIRE_E2E").is_err(), "ffmpeg is required (ORCHARD_REQUIRE_E2E=1)");
        eprintln!("skipped: no ffmpeg");
    }
    found
}

/// What ffprobe says of a video: its streams' `codec_type`, `codec_name`, sizes, rate, frames.
fn ffprobe(path: &std::path::Path) -> Value {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-print_format", "json", "-show_streams", "-show_format"])
        .arg(path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The first frame of a video, decoded to RGB by ffmpeg.
fn first_video_frame(path: &std::path::Path, width: u32, height: u32) -> image::RgbImage {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    image::RgbImage::from_raw(width, height, output.stdout).expect("one frame of rgb24")
}

#[tokio::test]
async fn render_video_makes_an_mp4_with_the_scenes_sound_and_tone_maps_exr_frames() {
    if !blender_available() || !ffmpeg_available() {
        return;
    }
    // examples/sound: 24 frames at 24 fps of a turning cube, a sound strip playing //tone.wav.
    let farm = LocalFarm::start();
    let scene = repo_root().join("examples/sound/sound.blend");
    let out = tempfile::tempdir().unwrap();
    let rendered = cli(&farm, &["render", scene.to_str().unwrap(), "--video", "--out", out.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&rendered.stdout).to_string();
    assert!(rendered.status.success(), "{stdout}{}", String::from_utf8_lossy(&rendered.stderr));
    let id = stdout.lines().next().and_then(|it| it.strip_prefix("Job ")).and_then(|it| it.split_whitespace().next());
    let id = id.unwrap_or_else(|| panic!("{stdout}")).to_string();
    let folder = out.path().join(&id);
    let video = folder.join("turn.mp4");
    assert!(video.exists(), "the video beside the frames: {stdout}");
    assert!(folder.join("turn_0024.png").exists());

    let probed = ffprobe(&video);
    let streams = probed["streams"].as_array().unwrap();
    let picture = streams.iter().find(|it| it["codec_type"] == "video").expect("a video stream");
    assert_eq!(picture["codec_name"], "h264");
    assert_eq!(picture["pix_fmt"], "yuv420p");
    assert_eq!((picture["width"].as_u64(), picture["height"].as_u64()), (Some(64), Some(48)));
    assert_eq!(picture["nb_read_frames"], "24", "every frame");
    assert_eq!(picture["r_frame_rate"], "24/1", "the scene's rate");
    let sound = streams.iter().find(|it| it["codec_type"] == "audio").expect("the scene's sound, mixed down");
    assert_eq!(sound["codec_name"], "aac");
    let duration: f64 = probed["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((0.9..1.2).contains(&duration), "one second: {duration}");
    // Not silence: the tone is there.
    let pcm = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&video)
        .args(["-vn", "-f", "s16le", "-ac", "1", "-"])
        .output()
        .unwrap();
    let samples: Vec<i16> = pcm.stdout.chunks_exact(2).map(|it| i16::from_le_bytes([it[0], it[1]])).collect();
    let loudest = samples.iter().map(|it| it.unsigned_abs()).max().unwrap_or(0);
    assert!(loudest > 1000, "the 440 Hz tone, not silence: peak {loudest}");

    // The API describes it as it is.
    let client = farm.client();
    let downloads = client.downloads(&id).await.unwrap();
    let described = &downloads.transforms.video;
    assert_eq!(described["fileName"], "turn.mp4");
    assert_eq!((described["frames"].as_u64(), described["audio"].as_bool()), (Some(24), Some(true)));
    assert_eq!(described["fps"].as_f64(), Some(24.0));
    assert_eq!(fetch(described["url"].as_str().unwrap()).await, std::fs::read(&video).unwrap());

    // EXR frames (linear) go through the scene's view transform, as Blender shows them: the
    // video's first frame looks like the PNG frame, not like raw linear values.
    let exr = r#"{"outputFormat": "OPEN_EXR", "outputSettings": {"colorDepth": "16"}}"#;
    let args = ["render", scene.to_str().unwrap(), "--video", "--frames", "1-3", "--config", exr];
    let rendered = cli(&farm, &[&args[..], &["--out", out.path().to_str().unwrap()]].concat());
    let stdout = String::from_utf8_lossy(&rendered.stdout).to_string();
    assert!(rendered.status.success(), "{stdout}{}", String::from_utf8_lossy(&rendered.stderr));
    let id = stdout.lines().next().and_then(|it| it.strip_prefix("Job ")).and_then(|it| it.split_whitespace().next());
    let exr_folder = out.path().join(id.unwrap());
    assert!(exr_folder.join("turn_0001.exr").exists());
    let from_exr = first_video_frame(&exr_folder.join("turn.mp4"), 64, 48);
    let from_png = first_video_frame(&video, 64, 48);
    let png = image::open(folder.join("turn_0001.png")).unwrap().to_rgb8();
    for (x, y) in [(2, 2), (32, 24), (50, 30)] {
        let (a, b, c) = (from_exr.get_pixel(x, y), from_png.get_pixel(x, y), png.get_pixel(x, y));
        for channel in 0..3 {
            let close = |p: u8, q: u8| p.abs_diff(q) <= 12;
            assert!(close(a[channel], c[channel]), "EXR video {a:?} vs PNG frame {c:?} at {x},{y}");
            assert!(close(b[channel], c[channel]), "PNG video {b:?} vs PNG frame {c:?} at {x},{y}");
        }
    }
}

#[tokio::test]
async fn a_stereo_scene_delivers_a_file_per_view_for_frames_and_compositor_outputs() {
    if !blender_available() {
        return;
    }
    // examples/stereo: stereo 3D saved as individual files, a File Output node ("Slate").
    let farm = LocalFarm::start();
    let client = farm.client();
    let scene = repo_root().join("examples/stereo/stereo.blend");
    let config = json!({"colorManagementPreset": "default", "frameRanges": ["1-2"], "chunkSize": 1});
    let id = submit_file(&client, &scene, config).await;
    let job = finished(&client, &id, Duration::from_secs(180)).await;
    assert_eq!(job.status, "completed", "{:?}", job.failed_reason);
    let downloads = client.downloads(&id).await.unwrap();
    let frames: Vec<(&str, &str)> =
        downloads.frame_outputs.iter().map(|it| (it.file_name.as_str(), it.view.as_str())).collect();
    assert_eq!(
        frames,
        [
            ("eye_0001_L.png", "left"),
            ("eye_0001_R.png", "right"),
            ("eye_0002_L.png", "left"),
            ("eye_0002_R.png", "right")
        ]
    );
    let mut slates: Vec<(String, String)> =
        downloads.composite_node_outputs.iter().map(|it| (it.relative_path.clone(), it.view.clone())).collect();
    slates.sort();
    let expected = [
        ("slate_0001_L.png", "left"),
        ("slate_0001_R.png", "right"),
        ("slate_0002_L.png", "left"),
        ("slate_0002_R.png", "right"),
    ];
    assert_eq!(slates, expected.map(|(a, b)| (a.to_string(), b.to_string())));
    // The eyes see the scene apart: the two views of a frame differ.
    let left = image::load_from_memory(&fetch(&downloads.frame_outputs[0].url).await).unwrap().to_rgb8();
    let right = image::load_from_memory(&fetch(&downloads.frame_outputs[1].url).await).unwrap().to_rgb8();
    assert_eq!((left.width(), left.height()), (64, 48));
    assert_ne!(left, right, "two views, not one image twice");
    // The archive holds every view; the contact sheet one cell per frame (the first view).
    let zip = fetch(&downloads.transforms.frames_zip).await;
    assert_eq!(zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap().len(), 4);
    let sheet = downloads.transforms.contact_sheet.as_ref().expect("a contact sheet");
    let sheet = image::load_from_memory(&fetch(&sheet.url).await).expect("the contact sheet decodes");
    assert_eq!(sheet.width(), 4 + 2 * (160 + 4), "two frames side by side");
}

/// A Python with PyPI's `bpy` named by `variable` (`ORCHARD_TEST_BPY`: 4.5,
/// `ORCHARD_TEST_BPY_50`: 5.0, set by `dev/test`); with `ORCHARD_REQUIRE_BPY=1` its absence fails.
fn bpy_python(variable: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os(variable).map(std::path::PathBuf::from).filter(|it| it.exists());
    if found.is_none() {
        assert!(std::env::var("ORCHARD_REQUIRE_BPY").is_err(), "{variable} is required (ORCHARD_REQUIRE_BPY=1)");
        eprintln!("bpy skipped: no {variable}");
    }
    found
}

/// Runs `command`, failing the test with what it printed when it fails.
fn passes(command: &mut Command, what: &str) {
    let output = command.stdin(Stdio::null()).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{what} failed:\n{said}");
    // The add-on's harness prints a line per check: `ok   …` or `FAIL …`.
    assert!(!said.lines().any(|it| it.starts_with("FAIL ")), "{what}:\n{said}");
}

#[tokio::test]
async fn the_blender_add_on_from_the_farm_submits_packs_and_downloads_in_blender_3_4_4_5_and_5_0() {
    if !blender_available() {
        return;
    }
    let farm = LocalFarm::start();
    let work = tempfile::tempdir().unwrap();
    // The add-on as an artist gets it: from the farm.
    let zip = fetch(&format!("{}/addon.zip", farm.url)).await;
    let zip_path = work.path().join("orchard.zip");
    std::fs::write(&zip_path, &zip).unwrap();
    let tests = repo_root().join("addon/tests");
    let fixtures = work.path().join("fixtures");
    passes(
        Command::new("blender")
            .args(["-b", "--factory-startup", "--python"])
            .arg(tests.join("make_scenes.py"))
            .arg("--")
            .arg(&fixtures),
        "making the add-on's fixture scenes",
    );
    let common = |command: &mut Command, out: &str| {
        command
            .args(["--server", &farm.url, "--key", &farm.key, "--zip"])
            .arg(&zip_path)
            .arg("--fixtures")
            .arg(&fixtures)
            .arg("--out")
            .arg(work.path().join(out));
    };
    passes(
        Command::new("python3").arg(tests.join("test_client.py")).args([
            "--server",
            &farm.url,
            "--key",
            &farm.key,
            "--fixtures",
            fixtures.to_str().unwrap(),
        ]),
        "the add-on's client test",
    );
    let mut blender = Command::new("blender");
    blender.args(["-b", "--factory-startup", "--python"]).arg(tests.join("run_addon_test.py")).arg("--");
    common(&mut blender, "out-3.4");
    passes(&mut blender, "the add-on in Blender 3.4");
    // bpy 4.5 both ways; 5.0 (whose files only a 5.0 worker renders) as an extension.
    let runs =
        [("ORCHARD_TEST_BPY", "4.5", &["extension", "legacy"][..]), ("ORCHARD_TEST_BPY_50", "5.0", &["extension"])];
    for (variable, version, installs) in runs {
        let Some(python) = bpy_python(variable) else { continue };
        for install in installs {
            let mut bpy = Command::new(&python);
            bpy.arg(tests.join("run_addon_test.py"));
            common(&mut bpy, &format!("out-bpy-{version}-{install}"));
            bpy.args(["--install", install]);
            passes(&mut bpy, &format!("the add-on under bpy {version} ({install})"));
        }
    }
}
