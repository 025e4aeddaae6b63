//! `/metrics`: Prometheus (OpenMetrics) text, names `orchard_…`. Events are counted as they
//! happen (frames, requests, claims); the state of the farm (jobs and tasks by status, workers
//! by status) is read from the store at each scrape, so that every server of a farm reports
//! the same totals and nothing drifts.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The server's metrics and their registry.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// Frames stored by completed tasks, here.
    pub(crate) frames_rendered: Counter,
    /// Time to find and lease a task for a worker (not the long poll's wait), here.
    pub(crate) claim_seconds: Histogram,
    requests: Family<RequestLabels, Histogram>,
    jobs: Family<StatusLabel, Gauge>,
    tasks: Family<StatusLabel, Gauge>,
    workers: Family<StatusLabel, Gauge>,
    /// Webhook delivery attempts by outcome (`delivered`, `failed`, `dead`), here.
    pub(crate) webhook_deliveries: Family<OutcomeLabel, Counter>,
    /// Event stream subscribers connected here.
    pub(crate) event_subscribers: Gauge,
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct OutcomeLabel {
    pub(crate) outcome: &'static str,
}

/// A request's route (the template, not the path: ids would make a series each), method and
/// status code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    /// `/api/external/v1/jobs/{id}`; `other` for paths no route matched.
    pub(crate) route: String,
    /// `GET`.
    pub(crate) method: String,
    /// `200`.
    pub(crate) status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("orchard");
        let frames_rendered = Counter::default();
        registry.register("frames_rendered", "Frames stored by completed tasks (this server)", frames_rendered.clone());
        let claim_seconds = Histogram::new(exponential_buckets(0.0002, 2.0, 16));
        registry.register(
            "claim_duration_seconds",
            "Time to find and lease a task for POST /claim, the long poll's wait excluded (this server)",
            claim_seconds.clone(),
        );
        let requests = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "HTTP requests by route, method and status, and how long they took (this server)",
            requests.clone(),
        );
        let jobs = Family::default();
        registry.register("jobs", "Jobs by status (the whole farm)", Family::clone(&jobs));
        let tasks = Family::default();
        registry.register("tasks", "Tasks queued and running (the whole farm)", Family::clone(&tasks));
        let workers = Family::default();
        registry.register(
            "workers",
            "Workers by status: idle, busy, draining, offline (the whole farm)",
            Family::clone(&workers),
        );
        let webhook_deliveries = Family::default();
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts by outcome: delivered, failed (retried), dead (this server)",
            Family::clone(&webhook_deliveries),
        );
        let event_subscribers = Gauge::default();
        registry.register("event_subscribers", "Event stream subscribers (this server)", event_subscribers.clone());
        Metrics {
            registry,
            frames_rendered,
            claim_seconds,
            requests,
            jobs,
            tasks,
            workers,
            webhook_deliveries,
            event_subscribers,
        }
    }
}

impl Metrics {
    /// A request answered.
    pub(crate) fn request(&self, labels: RequestLabels, took: Duration) {
        self.requests.get_or_create(&labels).observe(took.as_secs_f64());
    }

    /// The farm's state as read at this scrape: every status gets a value (0 for none), so
    /// that a series does not vanish when its count drops to zero.
    pub(crate) fn set_farm(&self, jobs: &[(String, i64)], tasks: &[(String, i64)], workers: &[(&str, i64)]) {
        let set = |family: &Family<StatusLabel, Gauge>, names: &[&str], counts: Vec<(&str, i64)>| {
            for name in names {
                let count = counts.iter().find(|(it, _)| it == name).map_or(0, |(_, n)| *n);
                family.get_or_create(&StatusLabel { status: name.to_string() }).set(count);
            }
        };
        let statuses: Vec<&str> = orchard_domain::JobStatus::ALL.iter().map(|it| it.as_str()).collect();
        set(&self.jobs, &statuses, jobs.iter().map(|(it, n)| (it.as_str(), *n)).collect());
        set(&self.tasks, &["queued", "running"], tasks.iter().map(|(it, n)| (it.as_str(), *n)).collect());
        set(&self.workers, &["idle", "busy", "draining", "offline"], workers.to_vec());
    }

    /// The OpenMetrics text of every metric.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
