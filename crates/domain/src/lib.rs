//! Orchard's domain: what a job is, which states it moves through, and what a render asks for.
//!
//! - [`status`]: [`JobStatus`] and [`TaskStatus`], each with one transition function.
//! - [`frames`]: [`FrameSet`], parsed from Renderjuice `frameRanges` strings (`"7"`, `"1-250"`, `"1-250x5"`).
//! - [`capabilities`]: [`WorkerCapabilities`], what a worker reports it can render.
//! - [`config`]: [`RenderConfig`] (what a task renders) and [`RequestedConfig`] (what a client asked for),
//!   validated field by field so that an error names the field.
//! - [`notices`]: [`Notice`], what a status change tells webhooks and the event stream.
//! - [`schema`]: the OpenAPI schemas of those types, from the constants their parsers check.
//! - [`speed`]: robust speed-factor estimates, from reference renders and from shared jobs.
//!
//! This crate does no IO and knows nothing of HTTP, SQL or Blender processes.
//! Time is always a parameter.
#![deny(missing_docs)]

pub mod capabilities;
pub mod config;
pub mod frames;
pub mod notices;
pub mod schema;
pub mod speed;
pub mod status;

pub use capabilities::{BlenderBuild, WorkerCapabilities};
pub use config::{ConfigError, RenderConfig, RequestedConfig};
pub use frames::{FrameError, FrameSet};
pub use notices::Notice;
pub use status::{IllegalTransition, JobEvent, JobStatus, PackagingEvent, PackagingStatus, TaskEvent, TaskStatus};
