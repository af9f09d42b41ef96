//! The emulator's state in SQLite: idempotent execute answers, jobs, reviews and spend.
//!
//! Under `--state DIR` the database is `DIR/emulator.sqlite3` and survives restarts;
//! without it the database lives in memory. Rows hold JSON bodies; the store is small
//! and every operation is one short statement under one connection lock. Jobs and
//! reviews record the key that created them (its id, not the key), and are read
//! through a [`Reader`].

use std::{path::Path, sync::Mutex};

use rusqlite::{Connection, OptionalExtension, named_params, params};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::audit::Head;
use crate::tenet::wire::JobBody;

/// A review of an escalated call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Review {
    /// `rev_...`
    pub id: String,
    /// `pending`, `approved` or `denied`.
    pub status: String,
    /// The Tenet tool name.
    pub tool: String,
    /// The service.
    pub service: String,
    /// The calling agent.
    pub agent: String,
    /// The call's arguments.
    pub arguments: Map<String, Value>,
    /// The call's context.
    pub context: Map<String, Value>,
    /// Why it was escalated.
    pub reason_codes: Vec<String>,
    /// The decision that escalated it.
    pub decision_id: String,
    /// The execute's request id.
    pub request_id: String,
    /// The job run on approval.
    pub job_id: Option<String>,
    /// When it was created (HTTP date).
    pub created: String,
    /// When it was decided (HTTP date).
    pub decided: Option<String>,
}

/// Whose jobs and reviews a read may return.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Reader<'a> {
    /// Every row: approvers and the approval page.
    Everyone,
    /// The rows the key `id` created; a tenant key also reads rows written before
    /// owners were recorded.
    Key {
        /// The key's id.
        id: &'a str,
        /// Whether the key is a tenant key.
        tenant: bool,
    },
}

impl Reader<'_> {
    /// The parameters of [`READABLE`]: the owner to match (none: everyone) and whether
    /// rows without an owner match.
    fn params(self) -> (Option<String>, bool) {
        match self {
            Self::Everyone => (None, true),
            Self::Key { id, tenant } => (Some(id.to_owned()), tenant),
        }
    }
}

/// The condition a row's `owner` meets when the reader of `:owner`, `:legacy`
/// ([`Reader::params`]) may see it.
const READABLE: &str = "(:owner IS NULL OR owner = :owner OR (owner IS NULL AND :legacy))";

/// The state database.
pub(crate) struct Store {
    db: Mutex<Connection>,
}

/// Why the state database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The state folder could not be created.
    #[error("cannot create the state folder {}: {source}", path.display())]
    CreateDir {
        /// The folder.
        path: std::path::PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// SQLite refused a statement.
    #[error("the emulator's state database failed: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A record could not be encoded for storing.
    #[error("cannot encode a record for the state database: {0}")]
    Encode(#[from] serde_json::Error),
    /// The stored audit head has a negative sequence number.
    #[error("the audit head in the state database is damaged (sequence {0})")]
    DamagedHead(i64),
    /// The audit sequence number does not fit the database.
    #[error("the audit sequence {0} is too large to store")]
    SequenceTooLarge(u64),
    /// The stored audit secret is not 32 bytes.
    #[error(
        "the audit secret in the state database is damaged ({0} bytes, not 32): move the state folder aside to start afresh"
    )]
    DamagedSecret(usize),
}

fn sql(error: rusqlite::Error) -> StoreError {
    StoreError::Sql(error)
}

/// Gives `jobs` and `reviews` their `owner` column (the creating key's id), also in
/// state folders written before keys owned rows.
fn add_owner_columns(db: &Connection) -> Result<(), StoreError> {
    for table in ["jobs", "reviews"] {
        if db
            .prepare(&format!("SELECT owner FROM {table} LIMIT 0"))
            .is_err()
        {
            db.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN owner TEXT"))
                .map_err(sql)?;
        }
    }
    Ok(())
}

impl Store {
    /// Opens the database under `dir`, or in memory.
    pub(crate) fn open(dir: Option<&Path>) -> Result<Self, StoreError> {
        let db = match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                    path: dir.to_owned(),
                    source,
                })?;
                Connection::open(dir.join("emulator.sqlite3")).map_err(sql)?
            }
            None => Connection::open_in_memory().map_err(sql)?,
        };
        db.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS audit_secret (id INTEGER PRIMARY KEY CHECK (id = 1), key BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS executes (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, status INTEGER NOT NULL, body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS reviews (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS spend (agent TEXT NOT NULL, day TEXT NOT NULL, usd REAL NOT NULL, PRIMARY KEY (agent, day));",
        )
        .map_err(sql)?;
        add_owner_columns(&db)?;
        Ok(Self { db: Mutex::new(db) })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stored answer to an execute: (body fingerprint, HTTP status, body).
    pub(crate) fn execute_answer(
        &self,
        key: &str,
    ) -> Result<Option<(String, u16, String)>, StoreError> {
        self.db()
            .query_row(
                "SELECT fingerprint, status, body FROM executes WHERE key = ?1",
                params![key],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()
            .map_err(sql)
    }

    /// Records the answer to an execute.
    pub(crate) fn save_execute_answer(
        &self,
        key: &str,
        fingerprint: &str,
        status: u16,
        body: &str,
    ) -> Result<(), StoreError> {
        self.db()
            .execute(
                "INSERT OR REPLACE INTO executes VALUES (?1, ?2, ?3, ?4)",
                params![key, fingerprint, status, body],
            )
            .map(drop)
            .map_err(sql)
    }

    /// A job, if `reader` may see it.
    pub(crate) fn job(&self, id: &str, reader: Reader<'_>) -> Result<Option<JobBody>, StoreError> {
        let (owner, legacy) = reader.params();
        let body: Option<String> = self
            .db()
            .query_row(
                &format!("SELECT body FROM jobs WHERE id = :id AND {READABLE}"),
                named_params! {":id": id, ":owner": owner, ":legacy": legacy},
                |row| row.get(0),
            )
            .optional()
            .map_err(sql)?;
        Ok(body.and_then(|b| serde_json::from_str(&b).ok()))
    }

    /// Creates a job owned by the key `owner` (none: the job of a review from before
    /// owners were recorded).
    pub(crate) fn add_job(&self, job: &JobBody, owner: Option<&str>) -> Result<(), StoreError> {
        let body = serde_json::to_string(job)?;
        self.db()
            .execute(
                "INSERT INTO jobs (id, body, owner) VALUES (?1, ?2, ?3)",
                params![job.job_id, body, owner],
            )
            .map(drop)
            .map_err(sql)
    }

    /// Updates a job.
    pub(crate) fn save_job(&self, job: &JobBody) -> Result<(), StoreError> {
        let body = serde_json::to_string(job)?;
        self.db()
            .execute(
                "UPDATE jobs SET body = ?2 WHERE id = ?1",
                params![job.job_id, body],
            )
            .map(drop)
            .map_err(sql)
    }

    /// Marks jobs a previous process left unfinished as failed; returns how many.
    pub(crate) fn fail_unfinished_jobs(&self, error: &str) -> Result<usize, StoreError> {
        let rows: Vec<String> = {
            let db = self.db();
            let mut statement = db.prepare("SELECT body FROM jobs").map_err(sql)?;
            statement
                .query_map([], |row| row.get(0))
                .map_err(sql)?
                .filter_map(Result::ok)
                .collect()
        };
        let mut failed = 0;
        for body in rows {
            let Ok(mut job) = serde_json::from_str::<JobBody>(&body) else {
                continue;
            };
            if !job.status.is_final() {
                job.status = crate::tenet::wire::JobStatus::Failed;
                job.execution_error = Some(error.to_owned());
                self.save_job(&job)?;
                failed += 1;
            }
        }
        Ok(failed)
    }

    /// A review and the key that created it (none for rows from before owners were
    /// recorded).
    pub(crate) fn review(&self, id: &str) -> Result<Option<(Review, Option<String>)>, StoreError> {
        let row: Option<(String, Option<String>)> = self
            .db()
            .query_row(
                "SELECT body, owner FROM reviews WHERE id = ?1",
                params![id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(sql)?;
        Ok(row.and_then(|(body, owner)| Some((serde_json::from_str(&body).ok()?, owner))))
    }

    /// The reviews `reader` may see, oldest first.
    pub(crate) fn reviews(&self, reader: Reader<'_>) -> Result<Vec<Review>, StoreError> {
        let (owner, legacy) = reader.params();
        let db = self.db();
        let mut statement = db
            .prepare(&format!(
                "SELECT body FROM reviews WHERE {READABLE} ORDER BY seq"
            ))
            .map_err(sql)?;
        let rows = statement
            .query_map(named_params! {":owner": owner, ":legacy": legacy}, |row| {
                row.get::<_, String>(0)
            })
            .map_err(sql)?;
        Ok(rows
            .filter_map(Result::ok)
            .filter_map(|b| serde_json::from_str(&b).ok())
            .collect())
    }

    /// Creates a review owned by the key `owner`.
    pub(crate) fn add_review(&self, review: &Review, owner: &str) -> Result<(), StoreError> {
        let body = serde_json::to_string(review)?;
        self.db()
            .execute(
                "INSERT INTO reviews (id, seq, body, owner) VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM reviews), ?2, ?3)",
                params![review.id, body, owner],
            )
            .map(drop)
            .map_err(sql)
    }

    /// Updates a review.
    pub(crate) fn save_review(&self, review: &Review) -> Result<(), StoreError> {
        let body = serde_json::to_string(review)?;
        self.db()
            .execute(
                "UPDATE reviews SET body = ?2 WHERE id = ?1",
                params![review.id, body],
            )
            .map(drop)
            .map_err(sql)
    }

    /// What `agent` has spent on `day`.
    pub(crate) fn spent(&self, agent: &str, day: &str) -> Result<f64, StoreError> {
        Ok(self
            .db()
            .query_row(
                "SELECT usd FROM spend WHERE agent = ?1 AND day = ?2",
                params![agent, day],
                |row| row.get(0),
            )
            .optional()
            .map_err(sql)?
            .unwrap_or(0.0))
    }

    /// Adds to what `agent` has spent on `day`.
    pub(crate) fn add_spend(&self, agent: &str, day: &str, usd: f64) -> Result<(), StoreError> {
        self.db()
            .execute("INSERT INTO spend VALUES (?1, ?2, ?3) ON CONFLICT (agent, day) DO UPDATE SET usd = usd + ?3", params![agent, day, usd])
            .map(drop)
            .map_err(sql)
    }

    /// The audit log's head as last appended, if one was ever stored.
    pub(crate) fn audit_head(&self) -> Result<Option<Head>, StoreError> {
        let row: Option<(i64, String)> = self
            .db()
            .query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()
            .map_err(sql)?;
        row.map(|(seq, hash)| {
            u64::try_from(seq)
                .map(|seq| Head { seq, hash })
                .map_err(|_| StoreError::DamagedHead(seq))
        })
        .transpose()
    }

    /// Stores the audit log's head.
    pub(crate) fn save_audit_head(&self, head: &Head) -> Result<(), StoreError> {
        let seq = i64::try_from(head.seq).map_err(|_| StoreError::SequenceTooLarge(head.seq))?;
        self.db()
            .execute(
                "INSERT INTO audit_head VALUES (1, ?1, ?2) ON CONFLICT (id) DO UPDATE SET seq = ?1, hash = ?2",
                params![seq, head.hash],
            )
            .map(drop)
            .map_err(sql)
    }

    /// The key of the audit log's argument digests: 32 random bytes made once per state.
    pub(crate) fn audit_secret(&self) -> Result<[u8; 32], StoreError> {
        let mut fresh = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut fresh[..]);
        let db = self.db();
        db.execute(
            "INSERT OR IGNORE INTO audit_secret VALUES (1, ?1)",
            params![&fresh[..]],
        )
        .map_err(sql)?;
        let key: Vec<u8> = db
            .query_row("SELECT key FROM audit_secret WHERE id = 1", [], |row| {
                row.get(0)
            })
            .map_err(sql)?;
        key.try_into()
            .map_err(|key: Vec<u8>| StoreError::DamagedSecret(key.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenet::wire::JobStatus;

    fn job(id: &str) -> JobBody {
        JobBody {
            job_id: id.into(),
            status: JobStatus::Pending,
            execution: None,
            execution_error: None,
        }
    }

    #[test]
    fn jobs_are_read_by_their_owner_only() {
        let store = Store::open(None).unwrap();
        store.add_job(&job("job_a"), Some("key_a")).unwrap();
        let (a, b) = (
            Reader::Key {
                id: "key_a",
                tenant: false,
            },
            Reader::Key {
                id: "key_b",
                tenant: true,
            },
        );
        assert!(store.job("job_a", a).unwrap().is_some());
        assert!(store.job("job_a", b).unwrap().is_none());
        let mut updated = job("job_a");
        updated.status = JobStatus::Running;
        store.save_job(&updated).unwrap();
        assert_eq!(
            store.job("job_a", a).unwrap().unwrap().status,
            JobStatus::Running,
            "an update keeps the owner"
        );
    }

    #[test]
    fn state_from_before_owners_opens_and_its_rows_go_to_tenant_keys() {
        let dir = tempfile::tempdir().unwrap();
        let db = Connection::open(dir.path().join("emulator.sqlite3")).unwrap();
        db.execute_batch(
            "CREATE TABLE jobs (id TEXT PRIMARY KEY, body TEXT NOT NULL);
             CREATE TABLE reviews (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, body TEXT NOT NULL);",
        )
        .unwrap();
        let body = serde_json::to_string(&job("job_old")).unwrap();
        db.execute("INSERT INTO jobs VALUES ('job_old', ?1)", params![body])
            .unwrap();
        drop(db);
        let store = Store::open(Some(dir.path())).unwrap();
        let reader = |tenant| Reader::Key { id: "k", tenant };
        assert!(store.job("job_old", reader(true)).unwrap().is_some());
        assert!(store.job("job_old", reader(false)).unwrap().is_none());
        assert!(store.job("job_old", Reader::Everyone).unwrap().is_some());
        store.add_job(&job("job_new"), Some("k")).unwrap();
        assert!(store.job("job_new", reader(false)).unwrap().is_some());
    }
}
