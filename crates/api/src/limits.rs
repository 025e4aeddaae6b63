//! The bounds of what clients and workers may send: the server checks them, and the OpenAPI
//! document states them (from these same constants).

/// Most parts of one upload (S3's limit).
pub const MAX_UPLOAD_PARTS: u32 = 10_000;
/// Longest upload file name, in characters.
pub const MAX_FILE_NAME: usize = 255;
/// Seconds a task may report having rendered: a month.
pub const MAX_RENDER_SECONDS: f64 = 30.0 * 24.0 * 3600.0;
/// A file name a worker may deliver: 1 to 200 of `A–Z a–z 0–9 . _ -`, not starting with a dot.
pub const OUTPUT_FILE_NAME: &str = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$";
/// Longest output file name, in characters (as [`OUTPUT_FILE_NAME`] says).
pub const MAX_OUTPUT_FILE_NAME: usize = 200;
/// A Blender version as a worker reports it (`4.5`, `3.4.1`, `5.0.0 Alpha`).
pub use orchard_domain::schema::BLENDER_VERSION;
/// Most characters of Blender output a worker sends in one call.
pub const MAX_LOG_CHUNK: usize = 64 * 1024;
/// Characters of Blender output kept per attempt: its tail (the end says what went wrong).
pub const MAX_TASK_LOG: usize = 256 * 1024;
/// Longest path a compositor output may have relative to its node's base, in characters.
pub const MAX_RELATIVE_PATH: usize = 1024;
/// Longest node or view name, in characters.
pub const MAX_NODE_NAME: usize = 200;
/// Most compositor files one task may deliver.
pub const MAX_COMPOSITES_PER_TASK: usize = 10_000;
