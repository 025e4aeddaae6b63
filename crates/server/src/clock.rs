//! The clock: stored times are unix milliseconds, shown as ISO 8601.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix milliseconds now. The one place the server reads the clock for stored times.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|it| it.as_millis() as i64).unwrap_or(0)
}

/// ISO 8601 (UTC, milliseconds) for a unix-milliseconds time.
pub(crate) fn iso8601(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
