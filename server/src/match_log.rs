//! The match log: every finished match's result, appended as one JSON line to a file and synced
//! to disk before the room moves on, so a restart loses no finished match.
//!
//! One task owns the file; rooms send it a line and wait (without blocking their tick) for the
//! acknowledgement before leaving the results screen.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::sync::{mpsc, oneshot};

const QUEUE: usize = 256;

struct Entry {
    line: Value,
    written: oneshot::Sender<()>,
}

#[derive(Clone)]
pub struct MatchLog {
    tx: mpsc::Sender<Entry>,
}

impl MatchLog {
    /// Opens (creating folders and file as needed) `path` for appending and starts the writer.
    pub fn open(path: &Path) -> std::io::Result<MatchLog> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || write_loop(file, path, rx));
        Ok(MatchLog { tx })
    }

    /// Queues one result; the receiver fires once it is on disk (or the write failed, logged).
    pub fn record(&self, line: Value) -> oneshot::Receiver<()> {
        let (written, rx) = oneshot::channel();
        if let Err(e) = self.tx.try_send(Entry { line, written }) {
            tracing::error!("match log queue full; a result was not written");
            // Dropping the entry fires the receiver with an error: the room is not held.
            drop(e);
        }
        rx
    }
}

fn write_loop(mut file: std::fs::File, path: PathBuf, mut rx: mpsc::Receiver<Entry>) {
    while let Some(entry) = rx.blocking_recv() {
        let mut line = entry.line.to_string();
        line.push('\n');
        let result = file
            .write_all(line.as_bytes())
            .and_then(|()| file.sync_data());
        if let Err(e) = result {
            tracing::error!(path = %path.display(), "cannot write the match log: {e}");
        }
        let _ = entry.written.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn results_are_appended_as_json_lines() {
        let dir = std::env::temp_dir().join(format!("tickwire-log-{}", std::process::id()));
        let path = dir.join("nested").join("matches.jsonl");
        let log = MatchLog::open(&path).unwrap();
        log.record(serde_json::json!({"matchNo": 1})).await.unwrap();
        log.record(serde_json::json!({"matchNo": 2})).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["matchNo"], 2);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
