//! Application operations: each is one thing a client or a worker asks for, whole — checks,
//! storage, status changes (through `lifecycle`), claims (through `scheduler`). Handlers in
//! `http` only extract, call one of these, and write the answer.

pub(crate) mod jobs;
pub(crate) mod uploads;
pub(crate) mod workers;

use crate::blobs::WriteError;
use crate::error::Error;

/// A streamed write's failure as the caller sees it.
fn write_error(e: WriteError, what: &str) -> Error {
    match e {
        WriteError::TooLarge { limit } => Error::TooLarge(format!("{what} are limited to {limit} bytes")),
        WriteError::Stream(message) => Error::invalid("upload_interrupted", message),
        WriteError::Storage(cause) => Error::Internal(cause),
    }
}
