//! The tamper-evident audit log: one JSON record per line, hash-chained, its end anchored
//! in the state.
//!
//! Each record carries a sequence number (from 1), the time, the agent, service and
//! tool, a keyed digest of the arguments (`arguments_hmac_sha256`: HMAC-SHA256 under a
//! secret kept in the state, so guessable arguments cannot be recovered; records of older
//! emulators carry a plain `arguments_sha256`), the event, outcome, reason codes, the
//! previous record's hash (64 zeros for the first) and its own hash: SHA-256 over the
//! record's canonical JSON (sorted keys, no whitespace) without `hash`. Lines are written
//! in that canonical form and only accepted in it, so the stored bytes are the hashed record.
//!
//! Each record is appended with fsync, then the head (the last record's sequence and hash)
//! is saved in the state. At start the log must end at that head, or exactly one record
//! past it (a crash between the two writes); anything else is refused. [`verify`] finds
//! the first broken record; the end of a log can only be checked against a head kept
//! elsewhere.

use std::{
    fmt,
    fs::{File, OpenOptions},
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    str::FromStr,
    sync::Mutex,
};

use hmac::{Hmac, Mac};
use serde::{
    Deserialize, Deserializer,
    de::{self, MapAccess, SeqAccess, Visitor},
};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::store::{Store, StoreError};

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an audit record is about.
#[derive(Clone, Debug, Default)]
pub struct Event {
    /// `decision`, `approval`, `denial` or `job`.
    pub kind: &'static str,
    /// The agent.
    pub agent: String,
    /// The service.
    pub service: String,
    /// The Tenet tool name.
    pub tool: String,
    /// The arguments (only their keyed digest is written).
    pub arguments: Value,
    /// The outcome or job status.
    pub outcome: String,
    /// Reason codes.
    pub reason_codes: Vec<String>,
    /// Related ids (decision, review, job, request).
    pub ids: Map<String, Value>,
}

/// Where a log ends: the last record's sequence number and hash (`0:` and [`GENESIS`]
/// for an empty log). Written and parsed as `SEQ:HASH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The last record's sequence number.
    pub seq: u64,
    /// The last record's hash (lowercase hex).
    pub hash: String,
}

impl Head {
    /// The head of an empty log.
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS.to_owned(),
        }
    }
}

impl fmt::Display for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

/// Text that is not a [`Head`].
#[derive(Debug, PartialEq, thiserror::Error)]
#[error(
    "expected SEQ:HASH as printed by `tenet-mcp audit verify` (a record number, a colon and 64 hex digits)"
)]
pub struct NotAHead;

impl FromStr for Head {
    type Err = NotAHead;

    fn from_str(text: &str) -> Result<Self, NotAHead> {
        let (seq, hash) = text.trim().split_once(':').ok_or(NotAHead)?;
        let seq = seq.parse().map_err(|_| NotAHead)?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(NotAHead);
        }
        Ok(Self {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

/// An append-only, hash-chained JSONL audit log.
pub struct AuditLog {
    path: PathBuf,
    /// Keyed with the state's secret.
    digests: Hmac<Sha256>,
    state: Mutex<(File, Head)>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Why the audit log cannot be opened or appended to.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The state database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file or folder could not be used.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `open the audit log`.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The log does not continue the chain the state holds; the text says what to do.
    #[error("{0}")]
    Refused(String),
    /// The digest key could not be used.
    #[error("cannot key the audit digests: {0}")]
    Key(#[from] hmac::digest::InvalidLength),
    /// A record was written but its head not saved.
    #[error(
        "audit record {head} was written but the state does not hold it as the head ({source}); the next start accepts the log only while it is at most one record past the stored head"
    )]
    Unanchored {
        /// The head written.
        head: Head,
        /// Why it was not saved.
        source: StoreError,
    },
}

impl AuditLog {
    /// Opens (or creates) the log at `path`, continuing its chain from the head kept in
    /// `store`; a broken chain, or a log that does not end at that head, is refused.
    /// `state_dir` is where `store` lives (`None`: in memory, so the end is not anchored).
    pub(crate) fn open(
        path: &Path,
        store: &Store,
        state_dir: Option<&Path>,
    ) -> Result<Self, AuditError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| AuditError::Io {
                action: "create",
                path: dir.to_owned(),
                source,
            })?;
        }
        // The stored head first: a record appended in between then shows as one past it.
        let stored = store.audit_head()?;
        let (found, last_prev_hash) = if path.exists() {
            match verify(path) {
                Verified::Intact {
                    head,
                    last_prev_hash,
                    ..
                } => (head, last_prev_hash),
                Verified::Broken { line, reason, .. } => {
                    let what = if reason.starts_with("truncated: the last record") {
                        "remove its incomplete last line (a write cut short); or, to start a new chain, "
                    } else {
                        "restore it from a backup; or, to start a new chain, "
                    };
                    let aside = if state_dir.is_some() {
                        "move it and the state folder aside"
                    } else {
                        "move it aside"
                    };
                    return Err(AuditError::Refused(format!(
                        "the audit log {} is broken at line {line} ({reason}): {what}{aside}",
                        path.display()
                    )));
                }
            }
        } else {
            (Head::genesis(), GENESIS.to_owned())
        };
        let head = match stored {
            None => {
                if state_dir.is_some() && found.seq > 0 {
                    tracing::warn!(
                        "the state holds no audit head yet: the audit log {} is anchored at its current end {found}; records deleted from it before now cannot be detected",
                        path.display()
                    );
                }
                found
            }
            Some(stored) if stored == found => found,
            Some(stored) if found.seq == stored.seq + 1 && last_prev_hash == stored.hash => {
                tracing::warn!(
                    "the audit log {} holds one record past the head kept in the state ({stored}), as a crash right after an append leaves it; the head is now {found}",
                    path.display()
                );
                found
            }
            Some(stored) => {
                return Err(AuditError::Refused(mismatch(
                    path, state_dir, &stored, &found,
                )));
            }
        };
        store.save_audit_head(&head)?;
        let secret = store.audit_secret()?;
        let digests = Hmac::<Sha256>::new_from_slice(&secret)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| AuditError::Io {
                action: "open the audit log",
                path: path.to_owned(),
                source,
            })?;
        if state_dir.is_none() {
            tracing::warn!(
                "the audit log {} is not anchored: without --state nothing keeps its head between runs, so records deleted from its end (or all of them) cannot be detected at start; keep the head elsewhere and check it with `tenet-mcp audit verify --expect-head`",
                path.display()
            );
        }
        tracing::info!(
            "audit log {}: head {head} (keep heads elsewhere to check the log's end later with `tenet-mcp audit verify --expect-head`)",
            path.display()
        );
        Ok(Self {
            path: path.to_owned(),
            digests,
            state: Mutex::new((file, head)),
        })
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record, syncs it to disk, then saves the new head in `store`.
    pub(crate) fn append(&self, event: Event, store: &Store) -> Result<(), AuditError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (file, head) = &mut *state;
        let mut digest = self.digests.clone();
        digest.update(canonical(&event.arguments).as_bytes());
        let mut record = json!({
            "seq": head.seq + 1,
            "time": httpdate::fmt_http_date(std::time::SystemTime::now()),
            "event": event.kind,
            "agent": event.agent,
            "service": event.service,
            "tool": event.tool,
            "arguments_hmac_sha256": hex::encode(digest.finalize().into_bytes()),
            "outcome": event.outcome,
            "reason_codes": event.reason_codes,
            "ids": event.ids,
            "prev_hash": head.hash.clone(),
        });
        let hash = hex::encode(Sha256::digest(canonical(&record).as_bytes()));
        record["hash"] = Value::String(hash.clone());
        let line = format!("{}\n", canonical(&record));
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|source| AuditError::Io {
                action: "write the audit log",
                path: self.path.clone(),
                source,
            })?;
        *head = Head {
            seq: head.seq + 1,
            hash,
        };
        store
            .save_audit_head(head)
            .map_err(|source| AuditError::Unanchored {
                head: head.clone(),
                source,
            })
    }
}

/// Why a log that does not end at the stored head is refused, and what to do.
fn mismatch(path: &Path, state_dir: Option<&Path>, stored: &Head, found: &Head) -> String {
    let what = if found.seq < stored.seq {
        "records were deleted from its end, or the file was replaced"
    } else {
        "the file was replaced or edited"
    };
    let state = state_dir.map_or_else(
        || "the state".to_owned(),
        |dir| format!("the state {}", dir.display()),
    );
    format!(
        "the audit log {log} does not end where {state} says it does: the state holds head {stored}, the log holds {records} records ending at {found} ({what}). Restore the log from a backup; or, to start a new chain, move the log and the state folder aside",
        log = path.display(),
        records = found.seq,
    )
}

/// JSON with sorted keys and no whitespace.
pub fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<_> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), canonical(&map[*k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// The result of [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verified {
    /// Every record checks out (which says nothing of records deleted from the end).
    Intact {
        /// Where the log ends; its `seq` is the number of records.
        head: Head,
        /// The last record's `prev_hash` ([`GENESIS`] for an empty log).
        last_prev_hash: String,
        /// How many records carry a plain (unkeyed) SHA-256 digest of their arguments.
        plain_digests: u64,
    },
    /// The first broken record.
    Broken {
        /// Its 1-based line.
        line: u64,
        /// The sequence number expected there.
        expected_seq: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Checks the chain of the log at `path`.
pub fn verify(path: &Path) -> Verified {
    let broken = |line: u64, reason: String| Verified::Broken {
        line,
        expected_seq: line,
        reason,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) => return broken(0, format!("cannot read {}: {e}", path.display())),
    };
    let mut head = Head::genesis();
    let mut last_prev_hash = GENESIS.to_owned();
    let mut plain_digests = 0;
    let mut reader = BufReader::new(file);
    let mut raw = String::new();
    loop {
        raw.clear();
        match reader.read_line(&mut raw) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return broken(head.seq + 1, format!("unreadable: {e}")),
        }
        let line = head.seq + 1;
        let Some(stored) = raw.strip_suffix('\n') else {
            return broken(line, "truncated: the last record is incomplete".into());
        };
        let value = match parse_strict(stored) {
            Ok(value) => value,
            Err(e) if e.is_data() => {
                return broken(
                    line,
                    format!("edited: {e}, so the stored bytes are not the record that was hashed"),
                );
            }
            Err(_) => {
                return broken(
                    line,
                    "truncated or edited: the line is not a JSON record".into(),
                );
            }
        };
        if value.is_object() && canonical(&value) != stored {
            return broken(
                line,
                "edited: the stored bytes are not the record's canonical form (keys out of order, extra whitespace or escapes), so they are not what was hashed".into(),
            );
        }
        let Value::Object(mut record) = value else {
            return broken(
                line,
                "truncated or edited: the line is not a JSON record".into(),
            );
        };
        let Some(Value::String(hash)) = record.remove("hash") else {
            return broken(line, "edited: the record has no hash".into());
        };
        let seq = record.get("seq").and_then(Value::as_u64).unwrap_or(0);
        if seq != line {
            let what = if seq > line {
                "deleted or reordered: records before it are missing or moved"
            } else {
                "reordered or duplicated: it is out of sequence"
            };
            return broken(
                line,
                format!("{what} (sequence {seq} where {line} was expected)"),
            );
        }
        if record.get("prev_hash").and_then(Value::as_str) != Some(head.hash.as_str()) {
            return broken(
                line,
                "reordered or deleted: its prev_hash does not match the record before it".into(),
            );
        }
        if record.contains_key("arguments_sha256") {
            plain_digests += 1;
        }
        let computed = hex::encode(Sha256::digest(canonical(&Value::Object(record)).as_bytes()));
        if computed != hash {
            return broken(line, "edited: its hash does not match its contents".into());
        }
        last_prev_hash = std::mem::replace(&mut head, Head { seq, hash }).hash;
    }
    Verified::Intact {
        head,
        last_prev_hash,
        plain_digests,
    }
}

/// The hash of record `seq` of the log at `path` ([`GENESIS`] for 0), without checking
/// the chain; `None` when the log has no such record.
pub fn hash_at(path: &Path, seq: u64) -> Option<String> {
    let Some(index) = seq.checked_sub(1) else {
        return Some(GENESIS.to_owned());
    };
    let line = BufReader::new(File::open(path).ok()?)
        .lines()
        .nth(usize::try_from(index).ok()?)?
        .ok()?;
    let record: Value = serde_json::from_str(&line).ok()?;
    record["hash"].as_str().map(str::to_owned)
}

/// Parses one JSON value, refusing any object that repeats a key (which a plain parse
/// would resolve silently, one way or the other).
fn parse_strict(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str::<Strict>(text).map(|strict| strict.0)
}

/// A JSON value whose objects repeat no key.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "the key {} appears twice",
                    Value::String(key)
                )));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log at `dir/audit.jsonl` with `n` records, its head kept in `dir/state`.
    fn log_with(n: usize) -> (tempfile::TempDir, PathBuf, Store) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let store = state(dir.path());
        let log = open(&path, &store, dir.path());
        for i in 0..n {
            log.append(
                Event {
                    kind: "decision",
                    tool: format!("t{i}"),
                    arguments: json!({"secret": "hunter2"}),
                    outcome: "ALLOW".into(),
                    ..Event::default()
                },
                &store,
            )
            .unwrap();
        }
        (dir, path, store)
    }

    fn state(dir: &Path) -> Store {
        Store::open(Some(&dir.join("state"))).unwrap()
    }

    fn open(path: &Path, store: &Store, dir: &Path) -> AuditLog {
        AuditLog::open(path, store, Some(&dir.join("state"))).unwrap()
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn write(path: &Path, lines: &[String]) {
        std::fs::write(
            path,
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )
        .unwrap();
    }

    fn broken_line(path: &Path) -> (u64, String) {
        match verify(path) {
            Verified::Broken { line, reason, .. } => (line, reason),
            intact => panic!("tampering not caught: {intact:?}"),
        }
    }

    fn head_of(path: &Path) -> Head {
        match verify(path) {
            Verified::Intact { head, .. } => head,
            broken => panic!("{broken:?}"),
        }
    }

    #[test]
    fn intact_chain_verifies_and_reopens() {
        let (dir, path, store) = log_with(4);
        assert_eq!(head_of(&path).seq, 4);
        assert!(
            !std::fs::read_to_string(&path).unwrap().contains("hunter2"),
            "arguments are digested, not written"
        );
        let log = open(&path, &store, dir.path());
        log.append(
            Event {
                kind: "job",
                ..Event::default()
            },
            &store,
        )
        .unwrap();
        assert_eq!(head_of(&path).seq, 5);
        assert_eq!(store.audit_head().unwrap(), Some(head_of(&path)));
    }

    #[test]
    fn every_kind_of_tampering_is_caught() {
        let (dir, path, store) = log_with(5);
        let original = lines(&path);

        let mut edited = original.clone();
        edited[2] = edited[2].replace("\"ALLOW\"", "\"BLOCK\"");
        write(&path, &edited);
        let (line, reason) = broken_line(&path);
        assert_eq!((line, reason.starts_with("edited")), (3, true), "{reason}");

        let mut deleted = original.clone();
        deleted.remove(1);
        write(&path, &deleted);
        let (line, reason) = broken_line(&path);
        assert_eq!((line, reason.starts_with("deleted")), (2, true), "{reason}");

        let mut reordered = original.clone();
        reordered.swap(1, 3);
        write(&path, &reordered);
        let (line, reason) = broken_line(&path);
        assert_eq!((line, reason.contains("reordered")), (2, true), "{reason}");

        write(&path, &original);
        let full = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, &full[..full.len() - 20]).unwrap();
        let (line, reason) = broken_line(&path);
        assert_eq!(
            (line, reason.starts_with("truncated")),
            (5, true),
            "{reason}"
        );

        let refused = AuditLog::open(&path, &store, Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("broken at line 5")
                && refused.contains("remove its incomplete last line")
                && refused.contains("move it and the state folder aside"),
            "{refused}"
        );
    }

    #[test]
    fn only_the_canonical_bytes_of_the_hashed_record_are_accepted() {
        let (_dir, path, _store) = log_with(3);
        let original = lines(&path);
        let line = &original[1];
        assert!(line.starts_with(r#"{"agent":"","#), "{line}");
        let variants = [
            // A second `outcome` another parser could read first; the hash covers the last.
            (
                line.replacen(
                    r#""outcome":"ALLOW""#,
                    r#""outcome":"BLOCK","outcome":"ALLOW""#,
                    1,
                ),
                r#"the key "outcome" appears twice"#,
            ),
            (
                format!(
                    "{{{},\"agent\":\"\"}}",
                    &line[r#"{"agent":"","#.len()..line.len() - 1]
                ),
                "canonical form",
            ),
            (
                line.replacen(r#"{"agent""#, r#"{ "agent""#, 1),
                "canonical form",
            ),
            (
                line.replacen(r#""decision""#, r#""d\u0065cision""#, 1),
                "canonical form",
            ),
        ];
        for (variant, named) in variants {
            let mut lines = original.clone();
            lines[1] = variant;
            write(&path, &lines);
            let (at, reason) = broken_line(&path);
            assert_eq!(at, 2, "{reason}");
            assert!(reason.contains(named), "{reason}");
        }
    }

    #[test]
    fn a_cut_or_replaced_log_is_refused_at_start_and_a_restored_one_continues() {
        let (dir, path, store) = log_with(3);
        let original = lines(&path);
        let head = head_of(&path);
        let refused = |path: &Path| {
            AuditLog::open(path, &store, Some(dir.path()))
                .unwrap_err()
                .to_string()
        };

        write(&path, &original[..2]);
        let message = refused(&path);
        for part in [
            path.display().to_string(),
            format!("head {head}"),
            "holds 2 records".into(),
            "deleted from its end".into(),
            "Restore the log".into(),
            "move the log and the state folder aside".into(),
        ] {
            assert!(message.contains(&part), "{part} not in: {message}");
        }
        std::fs::write(&path, "").unwrap();
        assert!(refused(&path).contains("holds 0 records"));
        std::fs::remove_file(&path).unwrap();
        assert!(refused(&path).contains("holds 0 records"));
        let (other_dir, other, _) = log_with(3);
        std::fs::copy(&other, &path).unwrap();
        assert!(refused(&path).contains("replaced or edited"));
        drop(other_dir);

        write(&path, &original);
        let log = open(&path, &store, dir.path());
        log.append(Event::default(), &store).unwrap();
        assert_eq!(head_of(&path).seq, 4);
    }

    #[test]
    fn a_crash_between_append_and_head_update_leaves_a_log_one_record_ahead_that_starts() {
        let (dir, path, store) = log_with(3);
        let full = head_of(&path);
        let original = lines(&path);
        write(&path, &original[..2]);
        let second = head_of(&path);
        write(&path, &original);

        // The third record reached the disk, its head did not.
        store.save_audit_head(&second).unwrap();
        let log = open(&path, &store, dir.path());
        assert_eq!(
            store.audit_head().unwrap(),
            Some(full.clone()),
            "head advanced"
        );
        drop(log);

        // Two records ahead is not a crash.
        write(&path, &original[..1]);
        store.save_audit_head(&head_of(&path)).unwrap();
        write(&path, &original);
        assert!(AuditLog::open(&path, &store, Some(dir.path())).is_err());

        // One ahead, but not from the stored head.
        store
            .save_audit_head(&Head {
                seq: 2,
                hash: "ab".repeat(32),
            })
            .unwrap();
        assert!(AuditLog::open(&path, &store, Some(dir.path())).is_err());
    }

    #[test]
    fn argument_digests_are_keyed_by_the_state_secret() {
        let digest = |path: &Path| -> String {
            serde_json::from_str::<Value>(&lines(path)[0]).unwrap()["arguments_hmac_sha256"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let (dir, path, store) = log_with(1);
        let secret = store.audit_secret().unwrap();
        let mut keyed = Hmac::<Sha256>::new_from_slice(&secret).unwrap();
        keyed.update(br#"{"secret":"hunter2"}"#);
        assert_eq!(digest(&path), hex::encode(keyed.finalize().into_bytes()));
        let plain = hex::encode(Sha256::digest(br#"{"secret":"hunter2"}"#));
        assert!(!std::fs::read_to_string(&path).unwrap().contains(&plain));

        let reopened = state(dir.path());
        assert_eq!(
            reopened.audit_secret().unwrap(),
            secret,
            "kept in the state"
        );
        let (_other_dir, other, _) = log_with(1);
        assert_ne!(digest(&other), digest(&path), "one secret per state");
        let in_memory = Store::open(None).unwrap().audit_secret().unwrap();
        assert_ne!(in_memory, secret);

        let log = open(&path, &reopened, dir.path());
        assert!(!format!("{log:?}").contains(&hex::encode(secret)));
    }

    #[test]
    fn records_with_plain_digests_still_verify_and_are_counted() {
        let mut record =
            json!({"seq": 1, "event": "decision", "arguments_sha256": "00", "prev_hash": GENESIS});
        let hash = hex::encode(Sha256::digest(canonical(&record).as_bytes()));
        record["hash"] = json!(hash);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.jsonl");
        std::fs::write(&path, format!("{record}\n")).unwrap();
        assert_eq!(
            verify(&path),
            Verified::Intact {
                head: Head { seq: 1, hash },
                last_prev_hash: GENESIS.into(),
                plain_digests: 1,
            }
        );
    }

    #[test]
    fn heads_parse_from_what_they_print() {
        let head = Head {
            seq: 12,
            hash: "0a".repeat(32),
        };
        assert_eq!(head.to_string().parse::<Head>(), Ok(head.clone()));
        assert_eq!(format!("12:{}", "0A".repeat(32)).parse::<Head>(), Ok(head));
        for bad in [
            "",
            "12",
            "x:00",
            "-1:00",
            &format!("1:{}", "g".repeat(64)),
            "1:abcd",
        ] {
            assert!(
                bad.parse::<Head>()
                    .unwrap_err()
                    .to_string()
                    .contains("SEQ:HASH"),
                "{bad}"
            );
        }
    }
}
