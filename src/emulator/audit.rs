//! The tamper-evident audit log: one JSON record per line, hash-chained.
//!
//! Each record carries a sequence number (from 1), the time, the agent, service and
//! tool, a SHA-256 digest of the arguments (never the arguments), the event, outcome,
//! reason codes, the previous record's hash (64 zeros for the first) and its own hash:
//! SHA-256 over the record's canonical JSON (sorted keys, no whitespace) without `hash`.
//! Records are appended with fsync. [`verify`] finds the first broken record.

use std::{
    fs::{File, OpenOptions},
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    sync::Mutex,
};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

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
    /// The arguments (only their digest is written).
    pub arguments: Value,
    /// The outcome or job status.
    pub outcome: String,
    /// Reason codes.
    pub reason_codes: Vec<String>,
    /// Related ids (decision, review, job, request).
    pub ids: Map<String, Value>,
}

/// An append-only, hash-chained JSONL audit log.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    state: Mutex<(File, u64, String)>,
}

impl AuditLog {
    /// Opens (or creates) the log at `path`, continuing its chain; a broken chain is refused.
    pub fn open(path: &Path) -> Result<Self, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let (seq, last) = if path.exists() {
            match verify(path) {
                Verified::Intact { records, last_hash } => (records, last_hash),
                Verified::Broken { line, reason, .. } => {
                    return Err(format!(
                        "the audit log {} is broken at line {line} ({reason}); move it aside to start a new one",
                        path.display()
                    ));
                }
            }
        } else {
            (0, GENESIS.to_owned())
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot open the audit log {}: {e}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            state: Mutex::new((file, seq, last)),
        })
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and syncs it to disk.
    pub fn append(&self, event: Event) -> Result<(), String> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (file, seq, prev) = &mut *state;
        let digest = hex::encode(Sha256::digest(canonical(&event.arguments).as_bytes()));
        let mut record = json!({
            "seq": *seq + 1,
            "time": httpdate::fmt_http_date(std::time::SystemTime::now()),
            "event": event.kind,
            "agent": event.agent,
            "service": event.service,
            "tool": event.tool,
            "arguments_sha256": digest,
            "outcome": event.outcome,
            "reason_codes": event.reason_codes,
            "ids": event.ids,
            "prev_hash": prev.clone(),
        });
        let hash = hex::encode(Sha256::digest(canonical(&record).as_bytes()));
        record["hash"] = Value::String(hash.clone());
        let line = format!("{record}\n");
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| format!("cannot write the audit log: {e}"))?;
        *seq += 1;
        *prev = hash;
        Ok(())
    }
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
    /// Every record checks out.
    Intact {
        /// How many records.
        records: u64,
        /// The last record's hash.
        last_hash: String,
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
    let mut prev = GENESIS.to_owned();
    let mut count = 0;
    let mut reader = BufReader::new(file);
    let mut raw = String::new();
    loop {
        raw.clear();
        match reader.read_line(&mut raw) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return broken(count + 1, format!("unreadable: {e}")),
        }
        let line = count + 1;
        if !raw.ends_with('\n') {
            return broken(line, "truncated: the last record is incomplete".into());
        }
        let Ok(Value::Object(mut record)) = serde_json::from_str::<Value>(&raw) else {
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
        if record.get("prev_hash").and_then(Value::as_str) != Some(prev.as_str()) {
            return broken(
                line,
                "reordered or deleted: its prev_hash does not match the record before it".into(),
            );
        }
        let computed = hex::encode(Sha256::digest(canonical(&Value::Object(record)).as_bytes()));
        if computed != hash {
            return broken(line, "edited: its hash does not match its contents".into());
        }
        prev = hash;
        count += 1;
    }
    Verified::Intact {
        records: count,
        last_hash: prev,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with(n: usize) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        for i in 0..n {
            log.append(Event {
                kind: "decision",
                tool: format!("t{i}"),
                arguments: json!({"secret": "hunter2"}),
                outcome: "ALLOW".into(),
                ..Event::default()
            })
            .unwrap();
        }
        (dir, path)
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

    #[test]
    fn intact_chain_verifies_and_reopens() {
        let (_dir, path) = log_with(4);
        assert!(matches!(verify(&path), Verified::Intact { records: 4, .. }));
        assert!(
            !std::fs::read_to_string(&path).unwrap().contains("hunter2"),
            "arguments are digested, not written"
        );
        let log = AuditLog::open(&path).unwrap();
        log.append(Event {
            kind: "job",
            ..Event::default()
        })
        .unwrap();
        assert!(matches!(verify(&path), Verified::Intact { records: 5, .. }));
    }

    #[test]
    fn every_kind_of_tampering_is_caught() {
        let (_dir, path) = log_with(5);
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

        assert!(
            AuditLog::open(&path)
                .unwrap_err()
                .contains("broken at line 5")
        );
    }
}
