//! The core's errors: what went wrong, by meaning. `http/error.rs` maps them to status codes
//! and the error body, once; nothing else in the core knows HTTP.

use std::fmt;

use serde_json::Value;

/// Every way an operation can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is wrong: a body, a query, a config value.
    #[error("{message}")]
    Invalid {
        /// snake_case code.
        code: &'static str,
        /// For a person.
        message: String,
        /// Structure, such as the refused field.
        details: Option<Value>,
    },
    /// The action is not allowed in the job's status.
    #[error("the job is {status}: {message}")]
    InvalidStatus {
        /// The job's status.
        status: &'static str,
        /// What is not allowed.
        message: String,
    },
    /// No credentials, unknown ones, or revoked ones.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A signed URL that is not valid or has expired.
    #[error("{message}")]
    Forbidden {
        /// snake_case code.
        code: &'static str,
        /// For a person.
        message: String,
    },
    /// Unknown, or another workspace's.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Something the request names does not exist, said specifically (an unknown slug, a
    /// page past the last).
    #[error("{message}")]
    Absent {
        /// snake_case code.
        code: &'static str,
        /// For a person.
        message: String,
        /// Structure, such as the last page.
        details: Option<Value>,
    },
    /// The path exists, but not with this method.
    #[error("{0} is not allowed here")]
    MethodNotAllowed(String),
    /// The resource is in a state that forbids this.
    #[error("{message}")]
    Conflict {
        /// snake_case code.
        code: &'static str,
        /// For a person.
        message: String,
    },
    /// Too large.
    #[error("{0}")]
    TooLarge(String),
    /// A request target longer than any this server makes.
    #[error("the request's URL is {0} bytes; at most {limit} are read", limit = crate::policy::MAX_URI_BYTES)]
    UriTooLong(usize),
    /// Over a rate limit: try again after `retry_after` seconds.
    #[error("{message}")]
    TooManyRequests {
        /// For a person.
        message: String,
        /// Seconds to wait.
        retry_after: u64,
    },
    /// The metadata store failed.
    #[error("the metadata store failed")]
    Store(#[from] orchard_store::StoreError),
    /// A bug or an infrastructure failure: logged with its cause, never echoed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// An [`Error::Invalid`] without details.
    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid { code, message: message.into(), details: None }
    }

    /// An [`Error::Invalid`] about one field of the request: the message says which and why,
    /// `details` has both (`{"field", "reason"}`) for programs.
    pub(crate) fn field(code: &'static str, field: &str, reason: impl Into<String>) -> Error {
        let reason = reason.into();
        Error::Invalid {
            code,
            message: format!("{field}: {reason}"),
            details: Some(serde_json::json!({ "field": field, "reason": reason })),
        }
    }

    /// Refused in the job's `status`.
    pub(crate) fn status(status: orchard_domain::JobStatus, message: &str) -> Error {
        Error::InvalidStatus { status: status.as_str(), message: message.to_string() }
    }

    /// The attempt no longer holds its task.
    pub(crate) fn lease_lost() -> Error {
        Error::Conflict {
            code: "lease_lost",
            message: "this attempt no longer holds the task (canceled, or requeued after its lease expired)".into(),
        }
    }
}

impl Error {
    /// Whether this failed because a disk is full (the database's, the storage's, or the
    /// temporary folder's): a 507 that says so, instead of a 500 that says nothing.
    pub(crate) fn is_disk_full(&self) -> bool {
        match self {
            Error::Store(store) => store.is_disk_full(),
            Error::Internal(error) => error.chain().any(|cause| {
                cause.downcast_ref::<std::io::Error>().is_some_and(|it| it.kind() == std::io::ErrorKind::StorageFull)
                    || cause.downcast_ref::<orchard_store::StoreError>().is_some_and(|it| it.is_disk_full())
                    || cause.to_string().contains("No space left on device")
            }),
            _ => false,
        }
    }
}

/// Result alias of the core.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// An error with its causes, `a: b: c`: the one way the server logs a failure.
///
/// `warn!(error = %Chain(&error), "…")`.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logged_error_keeps_every_cause() {
        let error = anyhow::anyhow!("disk full").context("writing frames.zip").context("finalizing");
        let error: &(dyn std::error::Error + 'static) = error.as_ref();
        assert_eq!(Chain(error).to_string(), "finalizing: writing frames.zip: disk full");
    }
}
