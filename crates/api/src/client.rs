//! A typed client of the Renderjuice-compatible API, used by `orchard render` and the tests.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{
    API_PREFIX, CompleteUploadRequest, CompleteUploadResponse, CreateJobRequest, CreateUploadRequest,
    CreateUploadResponse, Downloads, ErrorBody, Health, Job, JobEnvelope, Progress, RenderRequest, UploadedPart,
};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error status.
    #[error("{status}: {code}: {message}")]
    Api {
        /// HTTP status.
        status: StatusCode,
        /// The error code from the body, or `http_<status>`.
        code: String,
        /// The message from the body.
        message: String,
    },
    /// The server could not be reached, or the body was not what the API promises.
    #[error("{0}")]
    Transport(#[from] reqwest::Error),
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// A client bound to one server and one key.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    /// `base` is the server root (`http://127.0.0.1:7800`); `key` an `RJ-` key.
    pub fn new(base: &str, key: &str) -> Client {
        Client { http: reqwest::Client::new(), base: base.trim_end_matches('/').to_string(), key: key.to_string() }
    }

    /// The server root.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{API_PREFIX}{path}", self.base);
        let mut request = self.http.request(method, url).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        decode(response).await
    }

    /// `GET /healthz`.
    pub async fn health(&self) -> Result<Health, ClientError> {
        decode(self.http.get(format!("{}/healthz", self.base)).send().await?).await
    }

    /// `POST /uploads`.
    pub async fn create_upload(&self, file_name: &str, file_type: &str) -> Result<CreateUploadResponse, ClientError> {
        self.upload_target(file_name, file_type, None).await
    }

    /// `POST /uploads`, in `parts` when given.
    async fn upload_target(
        &self,
        file_name: &str,
        file_type: &str,
        parts: Option<u32>,
    ) -> Result<CreateUploadResponse, ClientError> {
        let body = CreateUploadRequest { file_name: file_name.to_string(), file_type: file_type.to_string(), parts };
        self.call(Method::POST, "/uploads", Some(&body)).await
    }

    /// `PUT uploadUrl` with a file's bytes, streamed; `progress` gets the bytes sent so far.
    pub async fn put_file(
        &self,
        upload_url: &str,
        path: &Path,
        progress: impl Fn(u64) + Send + Sync + 'static,
    ) -> Result<(), ClientError> {
        let file_error = |source| ClientError::File { path: path.display().to_string(), source };
        let size = tokio::fs::metadata(path).await.map_err(file_error)?.len();
        self.put_range(upload_url, path, 0, size, progress).await.map(|_| ())
    }

    /// PUTs `length` bytes of `path` from `start` to `url`, streamed from the disk;
    /// `progress` gets `start` plus the bytes sent so far.
    async fn put_range(
        &self,
        url: &str,
        path: &Path,
        start: u64,
        length: u64,
        progress: impl Fn(u64) + Send + Sync + 'static,
    ) -> Result<reqwest::Response, ClientError> {
        use futures::StreamExt;
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let file_error = |source| ClientError::File { path: path.display().to_string(), source };
        let mut file = tokio::fs::File::open(path).await.map_err(file_error)?;
        file.seek(std::io::SeekFrom::Start(start)).await.map_err(file_error)?;
        let mut sent = start;
        let stream = tokio_util::io::ReaderStream::with_capacity(file.take(length), 256 * 1024).map(move |chunk| {
            if let Ok(bytes) = &chunk {
                sent += bytes.len() as u64;
                progress(sent);
            }
            chunk
        });
        let response = self
            .http
            .put(url)
            .header(reqwest::header::CONTENT_LENGTH, length)
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await?;
        check(response).await
    }

    /// Uploads `path` and returns the upload's slug: in one PUT when it is at most
    /// `part_size` bytes, else in parts of `part_size` (Orchard's multipart extension;
    /// more when 10,000 parts would not hold it). `progress` gets the bytes sent so far.
    pub async fn upload_file(
        &self,
        file_name: &str,
        file_type: &str,
        path: &Path,
        part_size: u64,
        progress: impl Fn(u64) + Send + Sync + Clone + 'static,
    ) -> Result<String, ClientError> {
        let file_error = |source| ClientError::File { path: path.display().to_string(), source };
        let size = tokio::fs::metadata(path).await.map_err(file_error)?.len();
        let part_size = part_size.max(size.div_ceil(10_000)).max(1);
        if size <= part_size {
            let upload = self.create_upload(file_name, file_type).await?;
            self.put_range(&upload.upload_url, path, 0, size, progress).await?;
            return Ok(upload.slug);
        }
        let upload = self.upload_target(file_name, file_type, Some(size.div_ceil(part_size) as u32)).await?;
        let mut parts = Vec::with_capacity(upload.part_urls.len());
        for (index, url) in upload.part_urls.iter().enumerate() {
            let start = index as u64 * part_size;
            let length = part_size.min(size - start);
            let response = self.put_range(url, path, start, length, progress.clone()).await?;
            let etag = response
                .headers()
                .get(reqwest::header::ETAG)
                .and_then(|it| it.to_str().ok())
                .unwrap_or_default()
                .to_string();
            parts.push(UploadedPart { part_number: index as u32 + 1, etag });
        }
        let complete = CompleteUploadRequest { upload_id: upload.upload_id.clone(), parts };
        let _: CompleteUploadResponse =
            self.call(Method::POST, &format!("/uploads/{}/complete", upload.slug), Some(&complete)).await?;
        Ok(upload.slug)
    }

    /// `POST /jobs`.
    pub async fn create_job(&self, slug: &str) -> Result<Job, ClientError> {
        self.create_job_with(slug, None).await
    }

    /// `POST /jobs`, naming the main `.blend` of a `.zip` (Orchard extension).
    pub async fn create_job_with(&self, slug: &str, main_file: Option<&str>) -> Result<Job, ClientError> {
        let body = CreateJobRequest { slug: slug.to_string(), main_file: main_file.map(str::to_string) };
        self.call(Method::POST, "/jobs", Some(&body)).await
    }

    /// `GET /jobs/{id}`.
    pub async fn get_job(&self, id: &str) -> Result<Job, ClientError> {
        let envelope: JobEnvelope = self.call::<(), _>(Method::GET, &format!("/jobs/{id}"), None).await?;
        Ok(envelope.data)
    }

    /// `POST /jobs/{id}/validate`.
    pub async fn validate(&self, id: &str) -> Result<Job, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/jobs/{id}/validate"), None).await
    }

    /// `POST /jobs/{id}/render`.
    pub async fn render(&self, id: &str, config: serde_json::Value) -> Result<Job, ClientError> {
        let body = RenderRequest { requested_render_config: config };
        self.call(Method::POST, &format!("/jobs/{id}/render"), Some(&body)).await
    }

    /// `POST /jobs/{id}/cancel`.
    pub async fn cancel(&self, id: &str) -> Result<Job, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/jobs/{id}/cancel"), None).await
    }

    /// `GET /jobs` (one page; `status` a comma list or empty).
    pub async fn list_jobs(&self, page: u32, page_size: u32, status: &str) -> Result<crate::JobList, ClientError> {
        let mut path = format!("/jobs?page={page}&pageSize={page_size}");
        if !status.is_empty() {
            path.push_str(&format!("&status={status}"));
        }
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// `POST /jobs/{id}/suspend` (Orchard extension).
    pub async fn suspend(&self, id: &str, requeue_running: bool) -> Result<Job, ClientError> {
        let body = crate::SuspendRequest { requeue_running };
        self.call(Method::POST, &format!("/jobs/{id}/suspend"), Some(&body)).await
    }

    /// `POST /jobs/{id}/resume` (Orchard extension).
    pub async fn resume(&self, id: &str) -> Result<Job, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/jobs/{id}/resume"), None).await
    }

    /// `POST /jobs/{id}/retry` (Orchard extension): `frames`, or every frame without an output.
    pub async fn retry(&self, id: &str, frames: Option<Vec<String>>) -> Result<Job, ClientError> {
        let body = crate::RetryRequest { frames, requested_render_config: None };
        self.call(Method::POST, &format!("/jobs/{id}/retry"), Some(&body)).await
    }

    /// `PATCH /jobs/{id}` with a priority (Orchard extension).
    pub async fn set_priority(&self, id: &str, priority: u32) -> Result<Job, ClientError> {
        let body = crate::JobPatchRequest { priority };
        self.call(Method::PATCH, &format!("/jobs/{id}"), Some(&body)).await
    }

    /// `DELETE /jobs/{id}` (Orchard extension).
    pub async fn delete_job(&self, id: &str) -> Result<(), ClientError> {
        let url = format!("{}{API_PREFIX}/jobs/{id}", self.base);
        check(self.http.delete(url).bearer_auth(&self.key).send().await?).await?;
        Ok(())
    }

    /// `GET /jobs/progress`: the counters of every job in progress.
    pub async fn all_progress(&self) -> Result<Vec<Progress>, ClientError> {
        self.call::<(), _>(Method::GET, "/jobs/progress", None).await
    }

    /// `GET /workers` (Orchard extension).
    pub async fn list_workers(&self) -> Result<crate::WorkerList, ClientError> {
        self.call::<(), _>(Method::GET, "/workers", None).await
    }

    /// `POST /workers/{id}/drain` or `/undrain` (Orchard extension; admin keys).
    pub async fn drain(&self, worker_id: &str, draining: bool) -> Result<(), ClientError> {
        let action = if draining { "drain" } else { "undrain" };
        let url = format!("{}{API_PREFIX}/workers/{worker_id}/{action}", self.base);
        check(self.http.post(url).bearer_auth(&self.key).send().await?).await?;
        Ok(())
    }

    /// `GET /jobs/{id}/progress`.
    pub async fn progress(&self, id: &str) -> Result<Vec<Progress>, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/jobs/{id}/progress"), None).await
    }

    /// `GET /jobs/{id}/downloads`.
    pub async fn downloads(&self, id: &str) -> Result<Downloads, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/jobs/{id}/downloads"), None).await
    }

    /// `GET /jobs/{id}/tasks` (Orchard extension).
    pub async fn tasks(&self, id: &str) -> Result<Vec<crate::TaskInfo>, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/jobs/{id}/tasks"), None).await
    }

    /// `GET /jobs/{id}/tasks/{taskId}/log` (Orchard extension): the attempt's Blender log
    /// (the latest attempt's without `attempt`), or `None` when it has none yet.
    pub async fn task_log(
        &self,
        id: &str,
        task_id: &str,
        attempt: Option<i64>,
    ) -> Result<Option<TaskLog>, ClientError> {
        let mut url = format!("{}{API_PREFIX}/jobs/{id}/tasks/{task_id}/log", self.base);
        if let Some(attempt) = attempt {
            url.push_str(&format!("?attempt={attempt}"));
        }
        let response = self.http.get(url).bearer_auth(&self.key).send().await?;
        let response = match check(response).await {
            Ok(response) => response,
            Err(ClientError::Api { code, .. }) if code == "no_log" => return Ok(None),
            Err(error) => return Err(error),
        };
        let header = |name: &str| response.headers().get(name).and_then(|it| it.to_str().ok()).map(str::to_string);
        let attempt = header("x-orchard-attempt").and_then(|it| it.parse().ok()).unwrap_or(0);
        let truncated = header("x-orchard-log-truncated").as_deref() == Some("true");
        Ok(Some(TaskLog { attempt, truncated, text: response.text().await? }))
    }

    /// `POST /webhooks` (Orchard extension): the new endpoint, with its secret.
    pub async fn create_webhook(&self, url: &str, events: Vec<crate::Notice>) -> Result<crate::Webhook, ClientError> {
        let body = crate::CreateWebhookRequest { url: url.to_string(), events };
        self.call(Method::POST, "/webhooks", Some(&body)).await
    }

    /// `GET /webhooks` (Orchard extension).
    pub async fn list_webhooks(&self) -> Result<crate::WebhookList, ClientError> {
        self.call::<(), _>(Method::GET, "/webhooks", None).await
    }

    /// `DELETE /webhooks/{id}` (Orchard extension).
    pub async fn delete_webhook(&self, id: &str) -> Result<(), ClientError> {
        let url = format!("{}{API_PREFIX}/webhooks/{id}", self.base);
        check(self.http.delete(url).bearer_auth(&self.key).send().await?).await?;
        Ok(())
    }

    /// `POST /webhooks/{id}/rotate-secret` (Orchard extension): the endpoint with its new secret.
    pub async fn rotate_webhook_secret(&self, id: &str) -> Result<crate::Webhook, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/webhooks/{id}/rotate-secret"), None).await
    }

    /// `GET /webhooks/{id}/deliveries` (Orchard extension).
    pub async fn webhook_deliveries(&self, id: &str) -> Result<crate::DeliveryList, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/webhooks/{id}/deliveries"), None).await
    }

    /// `GET /events` (Orchard extension): the event stream, after `last_event_id` (from now
    /// on without it).
    pub async fn events(&self, last_event_id: Option<i64>) -> Result<EventStream, ClientError> {
        let mut request = self.http.get(format!("{}{API_PREFIX}/events", self.base)).bearer_auth(&self.key);
        if let Some(last) = last_event_id {
            request = request.header("Last-Event-ID", last.to_string());
        }
        let response = check(request.send().await?).await?;
        Ok(EventStream { body: Box::pin(response.bytes_stream()), pending: String::new() })
    }

    /// Fetches a signed URL into `path`, streamed.
    pub async fn download(&self, url: &str, path: &Path) -> Result<u64, ClientError> {
        use futures::StreamExt;
        use tokio::io::AsyncWriteExt;
        let response = check(self.http.get(url).send().await?).await?;
        let file_error = |source| ClientError::File { path: path.display().to_string(), source };
        let mut file = tokio::fs::File::create(path).await.map_err(file_error)?;
        let mut written = 0u64;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            file.write_all(&chunk).await.map_err(file_error)?;
            written += chunk.len() as u64;
        }
        file.flush().await.map_err(file_error)?;
        Ok(written)
    }
}

/// The event stream's events, as they come.
pub struct EventStream {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    pending: String,
}

/// One event of the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEvent {
    /// Its place in the log (`Last-Event-ID` to resume after it).
    pub id: i64,
    /// Its data: `type`, `jobId`, `status`, `at`, and a progress event's counters.
    pub data: serde_json::Value,
}

impl EventStream {
    /// The next event; `None` once the server closed the stream.
    pub async fn next(&mut self) -> Option<Result<StreamEvent, ClientError>> {
        use futures::StreamExt;
        loop {
            // Events end with a blank line; comments (`:`, keep-alives) are skipped.
            while let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..end + 2).collect();
                let field =
                    |name: &str| block.lines().find_map(|it| it.strip_prefix(name)).map(|it| it.trim().to_string());
                let (Some(id), Some(data)) = (field("id:"), field("data:")) else { continue };
                let (Ok(id), Ok(data)) = (id.parse(), serde_json::from_str(&data)) else { continue };
                return Some(Ok(StreamEvent { id, data }));
            }
            match self.body.next().await? {
                Ok(chunk) => self.pending.push_str(&String::from_utf8_lossy(&chunk)),
                Err(error) => return Some(Err(error.into())),
            }
        }
    }
}

/// One attempt's Blender log.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskLog {
    /// The attempt.
    pub attempt: i64,
    /// Its beginning was dropped (a long log keeps its end).
    pub truncated: bool,
    /// The text.
    pub text: String,
}

async fn check(response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => (body.error.code, body.error.message),
        Err(_) => (format!("http_{}", status.as_u16()), text),
    };
    Err(ClientError::Api { status, code, message })
}

async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, ClientError> {
    Ok(check(response).await?.json().await?)
}
