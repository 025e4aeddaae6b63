//! Packaging cost: how long finalizing takes (the contact sheet and the preview; the frames'
//! zip is made as it downloads) for jobs of N frames, how long downloading that zip takes, and
//! how many bytes the server stores per byte rendered.
//!
//!     cargo run --release -p dispatch-bench --bin packaging-bench -- [FRAMES...] [--side WIDTH]
//!
//! A simulated worker delivers PNG frames (a gradient with noise, WIDTH×WIDTH·9/16, about the
//! size of a real render of that size) to an in-process server on SQLite and a local folder;
//! finalizing is timed from the completion that finishes the job to `completed`. Stored bytes
//! are everything under the storage folder once the job completed (the scene's copy left out).

use std::time::{Duration, Instant};

use orchard_api::{Assignment, Client};
use orchard_server::ServerConfig;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::main]
async fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut side = 1280u32;
    if let Some(at) = args.iter().position(|it| it == "--side") {
        side = args.get(at + 1).and_then(|it| it.parse().ok()).unwrap_or(side);
        args.drain(at..=(at + 1).min(args.len() - 1));
    }
    let counts: Vec<usize> = args.iter().filter_map(|it| it.parse().ok()).collect();
    let counts = if counts.is_empty() { vec![24, 240] } else { counts };
    let frame = frame_png(side, side * 9 / 16);
    println!("frames of {}×{} PNG, {} KiB each", side, side * 9 / 16, frame.len() / 1024);
    for n in counts {
        let data = tempfile::tempdir().unwrap();
        let config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), data.path().to_path_buf());
        let server = orchard_server::start(config).await.unwrap();
        let store = server.store().clone();
        let (key, _) = orchard_server::keys::create_key(store.as_ref(), "bench", "bench").await.unwrap();
        let token = orchard_server::keys::create_worker_token(store.as_ref()).await.unwrap();
        let client = Client::new(&server.url(), &key);
        let upload = client.create_upload("cube.blend", "blend").await.unwrap();
        let scene = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/cube.blend");
        client.put_file(&upload.upload_url, &scene, |_| {}).await.unwrap();
        let job = client.create_job(&upload.slug).await.unwrap();
        client.validate(&job.id).await.unwrap();
        let config = json!({"colorManagementPreset": "default", "frameRanges": [format!("1-{n}")], "chunkSize": 1,
            "resolution": [side, side * 9 / 16], "resolutionPercentage": 100, "outputFormat": "PNG"});
        client.render(&job.id, config).await.unwrap();
        let http = reqwest::Client::new();
        let api = format!("{}/api/external/v1", server.url());
        let capabilities = json!({"blenders": [{"version": "3.4.1", "oidn": false, "eevee": false, "gpuBackends": []}],
            "cpuThreads": 2, "ramGib": 8.0, "tags": []});
        let body = json!({"workerId": "bench", "name": "bench", "capabilities": capabilities, "speedFactor": 1.0});
        let registered =
            http.post(format!("{api}/workers/register")).bearer_auth(&token).json(&body).send().await.unwrap();
        assert_eq!(registered.status(), StatusCode::OK);
        let mut finishing = Instant::now();
        for _ in 0..n {
            let task: Assignment = http
                .post(format!("{api}/workers/bench/claim"))
                .bearer_auth(&token)
                .json(&json!({"waitSeconds": 5}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let (file, url) = task.output_urls.iter().next().expect("an upload URL");
            assert_eq!(http.put(url).body(frame.clone()).send().await.unwrap().status(), StatusCode::OK);
            let done = json!({"attempt": task.attempt, "frames": [{"frame": task.frames[0], "fileName": file}],
                "renderSeconds": 1.0});
            finishing = Instant::now();
            let url = format!("{api}/workers/bench/tasks/{}/complete", task.task_id);
            let answer = http.post(url).bearer_auth(&token).json(&done).send().await.unwrap();
            assert_eq!(answer.status(), StatusCode::OK);
        }
        loop {
            if client.get_job(&job.id).await.unwrap().status == "completed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let finalizing = finishing.elapsed().as_secs_f64();
        let rendered = (frame.len() * n) as u64;
        let stored = bytes_under(&data.path().join("storage/jobs"));
        println!(
            "{n} frames: finalizing {finalizing:.2} s ({:.1} ms a frame); stored {:.1} MiB for {:.1} MiB rendered = {:.2} bytes per rendered byte",
            finalizing * 1000.0 / n as f64,
            stored as f64 / 1048576.0,
            rendered as f64 / 1048576.0,
            stored as f64 / rendered as f64
        );
        // The frames' zip, streamed from the stored frames as it downloads.
        let downloads = client.downloads(&job.id).await.unwrap();
        let started = Instant::now();
        let zip = reqwest::get(&downloads.transforms.frames_zip).await.unwrap().bytes().await.unwrap();
        let seconds = started.elapsed().as_secs_f64();
        let archive = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).unwrap();
        assert_eq!(archive.len(), n, "every frame in the zip");
        println!(
            "{n} frames: frames.zip of {:.1} MiB downloaded in {seconds:.2} s ({:.0} MiB/s)",
            zip.len() as f64 / 1048576.0,
            zip.len() as f64 / 1048576.0 / seconds
        );
        server.shutdown().await;
    }
}

/// A PNG about as large as a render: a gradient with a little noise (PNG compresses a flat
/// gradient to nothing).
fn frame_png(width: u32, height: u32) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let noise = (state % 8) as u8;
        image::Rgb([(x * 255 / width) as u8 ^ noise, (y * 255 / height) as u8 ^ noise, 128 ^ noise])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn bytes_under(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => pending.push(entry.path()),
                Ok(_) => total += entry.metadata().map(|it| it.len()).unwrap_or(0),
                Err(_) => {}
            }
        }
    }
    total
}
