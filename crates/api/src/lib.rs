//! The wire: every type that goes over HTTP, and a typed client.
//!
//! **API boundary.** This is the only crate whose types are serialized onto the
//! Renderjuice-compatible surface (`/api/external/v1`). Field names and envelopes follow
//! the Renderjuice documentation exactly; Orchard's additions are new fields and endpoints
//! only, never a change to a documented shape.
#![deny(missing_docs)]

pub mod client;
pub mod limits;
mod schema;
pub mod types;

pub use client::{Client, ClientError, EventStream, StreamEvent};
pub use orchard_domain::Notice;
pub use types::*;

/// The path prefix of the Renderjuice surface.
pub const API_PREFIX: &str = "/api/external/v1";
