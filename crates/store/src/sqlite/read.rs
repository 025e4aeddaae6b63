//! Point reads through SQLite's C API on the calling thread. sqlx runs each SQLite statement
//! on a thread of the connection's own, and the two hand-offs per statement cost far more
//! than the read: `GET /jobs/{id}` spent most of its time waking threads. A read by primary
//! key in WAL mode takes microseconds and never waits for the writer, so the few reads on a
//! client's hot path run here, on connections of their own.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use uuid::Uuid;

use crate::jobs::job_columns;
use crate::rows::{Columns, job_from_columns};
use crate::{Job, Result};

/// Connections kept at most; more are opened while many reads run at once, and closed after.
const KEPT: usize = 8;

/// Read-only connections to one database file, reused.
#[derive(Debug)]
pub(super) struct Readers {
    file: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// The column names of a job read, in order (the statement is fixed text).
    job_names: OnceLock<Vec<String>>,
}

/// A row and its statement's column names: rusqlite finds a column by name through SQLite's
/// C API, one call per column of the row for each lookup, which cost more than the read.
struct Named<'a> {
    row: &'a rusqlite::Row<'a>,
    names: &'a [String],
}

impl Named<'_> {
    fn index(&self, col: &'static str) -> Result<usize> {
        let index = self.names.iter().position(|it| it == col);
        Ok(index.ok_or_else(|| rusqlite::Error::InvalidColumnName(col.to_string()))?)
    }
}

impl Columns for Named<'_> {
    fn text(&self, col: &'static str) -> Result<Option<String>> {
        Ok(self.row.get(self.index(col)?)?)
    }

    fn int(&self, col: &'static str) -> Result<Option<i64>> {
        Ok(self.row.get(self.index(col)?)?)
    }

    fn real(&self, col: &'static str) -> Result<Option<f64>> {
        Ok(self.row.get(self.index(col)?)?)
    }
}

impl Readers {
    pub(super) fn new(file: &Path) -> Readers {
        Readers { file: file.to_path_buf(), idle: Mutex::default(), job_names: OnceLock::new() }
    }

    /// Runs `read` on an idle connection (or a new one), then keeps it for the next read.
    fn with<T>(&self, read: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => {
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let connection = Connection::open_with_flags(&self.file, flags)?;
                connection.busy_timeout(Duration::from_secs(10))?;
                connection
            }
        };
        let result = read(&connection);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < KEPT {
            idle.push(connection);
        }
        result
    }

    /// The job `job_id` (of `workspace_id`, when given), without its analysis.
    pub(super) fn job(&self, workspace_id: Option<Uuid>, job_id: Uuid) -> Result<Option<Job>> {
        self.with(|connection| {
            let mut statement = connection.prepare_cached(concat!(
                "select ",
                job_columns!(),
                " from jobs where id = ?1 and (?2 is null or workspace_id = ?2)"
            ))?;
            let names =
                self.job_names.get_or_init(|| statement.column_names().into_iter().map(str::to_string).collect());
            let workspace_id = workspace_id.map(|it| it.to_string());
            let job = statement
                .query_row((job_id.to_string(), workspace_id), |row| Ok(job_from_columns(&Named { row, names })));
            job.optional()?.transpose()
        })
    }
}
