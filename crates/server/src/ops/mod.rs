//! Application operations: each is one thing a client or a worker asks for, whole — checks,
//! storage, status changes (through `lifecycle`), claims (through `scheduler`). Handlers in
//! `http` only extract, call one of these, and write the answer.

pub(crate) mod farm;
pub(crate) mod jobs;
pub(crate) mod packaging;
pub(crate) mod uploads;
pub(crate) mod webhooks;
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

/// `body`, refused when it carries no bytes: an empty scene or frame is a client's mistake,
/// said before anything is stored.
async fn non_empty<S, E>(mut body: S) -> Result<impl futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin, Error>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
{
    use futures::StreamExt;
    loop {
        match body.next().await {
            None => return Err(Error::invalid("empty_body", "the body is empty: PUT the file's bytes")),
            Some(Ok(chunk)) if chunk.is_empty() => continue,
            Some(first) => return Ok(futures::stream::iter([first]).chain(body)),
        }
    }
}
