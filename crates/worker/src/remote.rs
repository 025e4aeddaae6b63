//! The worker protocol over HTTP: the [`Coordinator`] a worker uses to talk to a server.
//!
//! Every call retries transport failures and 5xx answers with backoff, so that a worker
//! rides out a server restart and carries on with the task it holds.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use futures::StreamExt;
use orchard_api::{
    API_PREFIX, Assignment, ClaimNext, ClaimRequest, CompleteRequest, CompleteResponse, DeliveredComposite,
    DeliveredFrame, FailRequest, HeartbeatRequest, OutputUrlsRequest, OutputUrlsResponse, PackagingDone,
    RegisterRequest, RegisterResponse, VideoInfo,
};
use reqwest::StatusCode;
use tokio::io::AsyncWriteExt;
use tracing::warn;

use crate::{Beat, Coordinator, Delivery, LeaseStatus, RenderedFrame};

/// Frames as the files `upload` sends: (name, path).
fn files_of(frames: &[RenderedFrame]) -> Vec<(&str, &Path)> {
    frames.iter().map(|it| (it.file_name.as_str(), it.path.as_path())).collect()
}

/// How long a call keeps retrying before it gives up.
const RETRY_FOR: Duration = Duration::from_secs(120);
/// Seconds a claim waits on the server for work.
const CLAIM_WAIT_SECONDS: u64 = 20;

/// A server, reached over HTTP with a worker token.
#[derive(Clone)]
pub struct HttpCoordinator {
    http: reqwest::Client,
    base: String,
    token: String,
    worker_id: String,
}

impl HttpCoordinator {
    /// Registers with the server at `base` (retrying until it answers) and returns the
    /// coordinator and the server's lease settings.
    pub async fn register(
        base: &str,
        token: &str,
        request: &RegisterRequest,
    ) -> anyhow::Result<(HttpCoordinator, RegisterResponse)> {
        let coordinator = HttpCoordinator {
            http: reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build()?,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            worker_id: request.worker_id.clone(),
        };
        let response = coordinator
            .send(|| coordinator.http.post(coordinator.url("/workers/register")).json(request))
            .await
            .context("registering with the server")?;
        let registered: RegisterResponse = response.json().await?;
        Ok((coordinator, registered))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{API_PREFIX}{path}", self.base)
    }

    fn task_url(&self, assignment: &Assignment, what: &str) -> String {
        let kind = if assignment.packaging.is_some() { "packaging" } else { "tasks" };
        self.url(&format!("/workers/{}/{kind}/{}/{what}", self.worker_id, assignment.task_id))
    }

    /// Sends an API request (with the worker token), retrying transport errors and 5xx;
    /// returns any other answer, turning 4xx other than 409 into errors.
    async fn send(&self, build: impl Fn() -> reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        self.send_with(true, build).await
    }

    /// As [`Self::send`], for a signed URL: the URL is the credential, so the token is not
    /// sent (a bucket must never see it, and S3 refuses a signed URL with an `Authorization`).
    async fn send_signed(&self, build: impl Fn() -> reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        self.send_with(false, build).await
    }

    async fn send_with(
        &self,
        with_token: bool,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        let deadline = tokio::time::Instant::now() + RETRY_FOR;
        let mut delay = Duration::from_millis(250);
        loop {
            let request = if with_token { build().bearer_auth(&self.token) } else { build() };
            // Errors never carry the URL: signed URLs are credentials, and these messages end
            // up in logs and in task failure reports.
            let result = request.send().await.map_err(reqwest::Error::without_url);
            let retry_reason = match result {
                Ok(response) if response.status().is_server_error() => format!("server answered {}", response.status()),
                Ok(response) if response.status().is_client_error() && response.status() != StatusCode::CONFLICT => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    anyhow::bail!("server refused the call ({status}): {body}");
                }
                Ok(response) => return Ok(response),
                Err(error) => format!("{error}"),
            };
            if tokio::time::Instant::now() + delay > deadline {
                anyhow::bail!("the server is unreachable: {retry_reason}");
            }
            warn!(reason = %retry_reason, "server call failed; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// PUTs every frame to its URL in `urls`.
    async fn upload(
        &self,
        files: &[(&str, &Path)],
        urls: &std::collections::BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        for (file_name, path) in files {
            let target = urls.get(*file_name).with_context(|| format!("no upload URL for {file_name}"))?;
            self.put_file(target, path).await.with_context(|| format!("uploading {file_name}"))?;
        }
        Ok(())
    }

    /// PUTs the file at `path` to the signed URL `target`.
    async fn put_file(&self, target: &str, path: &Path) -> anyhow::Result<()> {
        let size = tokio::fs::metadata(path).await.with_context(|| format!("reading {}", path.display()))?.len();
        // Streamed from the disk, never whole in memory (a frame can be a large EXR); each
        // try reads the file afresh. A bucket needs the length up front.
        self.send_signed(|| {
            let body = match std::fs::File::open(path) {
                Ok(file) => reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
                    tokio::fs::File::from_std(file),
                    256 * 1024,
                )),
                // Gone since it was checked: an empty body the server refuses (length mismatch).
                Err(_) => reqwest::Body::from(Vec::new()),
            };
            self.http.put(target).header(reqwest::header::CONTENT_LENGTH, size).body(body)
        })
        .await?;
        Ok(())
    }

    /// Writes the answer of `response` to `dest`, streamed.
    async fn save(response: reqwest::Response, dest: &Path) -> anyhow::Result<()> {
        let mut file = tokio::fs::File::create(dest).await.with_context(|| format!("creating {}", dest.display()))?;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk?).await?;
        }
        file.flush().await?;
        Ok(())
    }

    fn lease_of(response: &reqwest::Response) -> LeaseStatus {
        if response.status() == StatusCode::CONFLICT { LeaseStatus::Lost } else { LeaseStatus::Held }
    }
}

#[async_trait]
impl Coordinator for HttpCoordinator {
    async fn claim(&self, worker_id: &str, prefer_job: Option<&str>) -> anyhow::Result<Option<Assignment>> {
        let body = ClaimRequest { prefer_job: prefer_job.map(str::to_string), wait_seconds: CLAIM_WAIT_SECONDS };
        let url = self.url(&format!("/workers/{worker_id}/claim"));
        let response = self
            .send(|| self.http.post(&url).timeout(Duration::from_secs(CLAIM_WAIT_SECONDS + 15)).json(&body))
            .await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        Ok(Some(response.json().await?))
    }

    async fn fetch_scene(&self, assignment: &Assignment, dest: &Path) -> anyhow::Result<()> {
        let url = format!("{}?attempt={}", self.task_url(assignment, "scene"), assignment.attempt);
        let response = self.send(|| self.http.get(&url)).await?;
        if response.status() == StatusCode::CONFLICT {
            anyhow::bail!("the task was reassigned before its scene was fetched");
        }
        Self::save(response, dest).await
    }

    async fn download(&self, url: &str, dest: &Path) -> anyhow::Result<()> {
        let response = self.send_signed(|| self.http.get(url)).await?;
        if !response.status().is_success() {
            anyhow::bail!("the download answered {}", response.status());
        }
        Self::save(response, dest).await
    }

    async fn deliver_video(
        &self,
        assignment: &Assignment,
        path: &Path,
        video: VideoInfo,
    ) -> anyhow::Result<LeaseStatus> {
        let packaging = assignment.packaging.as_ref().context("not a packaging task")?;
        self.put_file(&packaging.upload_url, path).await.context("uploading the video")?;
        let body = PackagingDone { attempt: assignment.attempt, video };
        let url = self.task_url(assignment, "complete");
        let response = self.send(|| self.http.post(&url).json(&body)).await?;
        Ok(Self::lease_of(&response))
    }

    async fn heartbeat(&self, assignment: &Assignment, beat: &Beat) -> anyhow::Result<LeaseStatus> {
        let body = HeartbeatRequest {
            attempt: assignment.attempt,
            frames_done: beat.frames_done,
            frame_progress: beat.frame_progress,
            log: beat.log.clone(),
        };
        let url = self.task_url(assignment, "heartbeat");
        // A heartbeat that cannot get through is not retried for long: the next one will try again.
        let response = build_and_send_once(self, || self.http.post(&url).json(&body)).await?;
        Ok(Self::lease_of(&response))
    }

    async fn complete(
        &self,
        assignment: &Assignment,
        delivery: Delivery,
        claim_next: Option<ClaimNext>,
    ) -> anyhow::Result<(LeaseStatus, Option<Assignment>)> {
        let Delivery { frames, render_seconds, blender_version, log, composites, blank, non_finite } = delivery;
        // The URLs that came with the task, when they name every file; else, or when one of
        // them is refused (expired), URLs asked for now.
        let mut uploaded = false;
        if frames.iter().all(|it| assignment.output_urls.contains_key(&it.file_name)) {
            match self.upload(&files_of(&frames), &assignment.output_urls).await {
                Ok(()) => uploaded = true,
                Err(error) => warn!(error = format!("{error:#}"), "upload refused; asking for new URLs"),
            }
        }
        if !uploaded {
            let files: Vec<String> = frames.iter().map(|it| it.file_name.clone()).collect();
            let request = OutputUrlsRequest { attempt: assignment.attempt, files };
            let url = self.task_url(assignment, "outputs");
            let response = self.send(|| self.http.post(&url).json(&request)).await?;
            if response.status() == StatusCode::CONFLICT {
                return Ok((LeaseStatus::Lost, None));
            }
            let urls: OutputUrlsResponse = response.json().await?;
            self.upload(&files_of(&frames), &urls.urls).await?;
        }
        // Compositor files: URLs asked for now (the task came with the frames' only).
        if !composites.is_empty() {
            let files: Vec<String> = composites.iter().map(|it| it.file_name.clone()).collect();
            let request = OutputUrlsRequest { attempt: assignment.attempt, files };
            let url = self.task_url(assignment, "outputs");
            let response = self.send(|| self.http.post(&url).json(&request)).await?;
            if response.status() == StatusCode::CONFLICT {
                return Ok((LeaseStatus::Lost, None));
            }
            let urls: OutputUrlsResponse = response.json().await?;
            let files: Vec<(&str, &Path)> =
                composites.iter().map(|it| (it.file_name.as_str(), it.path.as_path())).collect();
            self.upload(&files, &urls.urls).await?;
        }
        let done = CompleteRequest {
            attempt: assignment.attempt,
            frames: frames
                .iter()
                .map(|it| DeliveredFrame {
                    frame: it.frame,
                    file_name: it.file_name.clone(),
                    blank: blank.contains(&it.frame),
                    non_finite: non_finite.contains(&it.frame),
                    view: it.view.clone(),
                })
                .collect(),
            render_seconds,
            claim_next,
            blender_version: Some(blender_version),
            log,
            composites: composites
                .iter()
                .map(|it| DeliveredComposite {
                    frame: it.frame,
                    file_name: it.file_name.clone(),
                    relative_path: it.relative_path.clone(),
                    node: it.node.clone(),
                    view: it.view.clone(),
                })
                .collect(),
        };
        let url = self.task_url(assignment, "complete");
        let response = self.send(|| self.http.post(&url).json(&done)).await?;
        if Self::lease_of(&response) == LeaseStatus::Lost {
            return Ok((LeaseStatus::Lost, None));
        }
        let answer: CompleteResponse = response.json().await.context("reading the completion's answer")?;
        Ok((LeaseStatus::Held, answer.next))
    }

    async fn fail(&self, assignment: &Assignment, error: &str, log: Option<String>) -> anyhow::Result<()> {
        let body = FailRequest { attempt: assignment.attempt, error: error.to_string(), log };
        let url = self.task_url(assignment, "fail");
        self.send(|| self.http.post(&url).json(&body)).await?;
        Ok(())
    }
}

async fn build_and_send_once(
    coordinator: &HttpCoordinator,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> anyhow::Result<reqwest::Response> {
    let response = build()
        .bearer_auth(&coordinator.token)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(reqwest::Error::without_url)?;
    if response.status().is_success() || response.status() == StatusCode::CONFLICT {
        return Ok(response);
    }
    anyhow::bail!("heartbeat answered {}", response.status())
}
