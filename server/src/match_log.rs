//! The match log: every finished match's result, appended as one JSON line to a file and synced
//! to disk before the room moves on, so a restart loses no finished match.
//!
//! One task owns the file; rooms send it a line and wait (without blocking their tick) for the
//! acknowledgement before leaving the results screen.
//!
//! A crash can leave a partial last line (the process died inside a write). Opening the log
//! truncates it to its last whole line, and says so, so the next match does not run on from the
//! torn one. Every line carries a `matchId` unique across restarts: a random id drawn for each
//! run of the server, then the match's number in that run.

use crate::random::{RandomSource, Unavailable};
use serde_json::Value;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use tokio::sync::{mpsc, oneshot};

/// Why the log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("no id for this run's matches: {0}")]
    Random(#[from] Unavailable),
}

const QUEUE: usize = 256;

enum Entry {
    Line {
        line: Value,
        written: oneshot::Sender<()>,
    },
    /// Answered once every line queued before it is on disk.
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct MatchLog {
    tx: mpsc::Sender<Entry>,
}

impl MatchLog {
    /// Opens (creating folders and file as needed) `path` for appending, cuts a torn last line
    /// off, and starts the writer. `random` draws this run's id.
    pub fn open(path: &Path, random: &dyn RandomSource) -> Result<MatchLog, OpenError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut run = [0u8; 8];
        random.fill(&mut run)?;
        let run: String = run.iter().map(|b| format!("{b:02x}")).collect();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        let torn = repair_torn_tail(&mut file)?;
        if torn > 0 {
            tracing::warn!(
                path = %path.display(),
                "the match log ended in a partial line ({torn} bytes, from a crash); cut it off"
            );
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || write_loop(file, path, run, rx));
        Ok(MatchLog { tx })
    }

    /// Queues one result; the receiver fires once it is on disk (or the write failed, logged).
    pub fn record(&self, line: Value) -> oneshot::Receiver<()> {
        let (written, rx) = oneshot::channel();
        if let Err(e) = self.tx.try_send(Entry::Line { line, written }) {
            tracing::error!("match log queue full; a result was not written");
            // Dropping the entry fires the receiver with an error: the room is not held.
            drop(e);
        }
        rx
    }

    /// Returns once every result recorded before this call is on disk (or failed, logged).
    pub async fn flush(&self) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Entry::Flush(done)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// Truncates `file` after its last newline (to nothing when it has none); returns the bytes cut.
fn repair_torn_tail(file: &mut File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    // Backwards a block at a time: the log grows for ever, the torn part is short.
    const BLOCK: u64 = 64 * 1024;
    let mut end = len;
    let mut buf = vec![0u8; BLOCK as usize];
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(at) = chunk.iter().rposition(|&b| b == b'\n') {
            let whole = start + at as u64 + 1;
            if whole < len {
                file.set_len(whole)?;
                file.sync_data()?;
            }
            return Ok(len - whole);
        }
        end = start;
    }
    if len > 0 {
        file.set_len(0)?;
        file.sync_data()?;
    }
    Ok(len)
}

fn write_loop(mut file: File, path: PathBuf, run: String, mut rx: mpsc::Receiver<Entry>) {
    let mut matches = 0u64;
    while let Some(entry) = rx.blocking_recv() {
        let (mut line, written) = match entry {
            Entry::Line { line, written } => (line, written),
            Entry::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        };
        matches += 1;
        line["matchId"] = format!("{run}-{matches}").into();
        let mut text = line.to_string();
        text.push('\n');
        let result = file
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_data());
        if let Err(e) = result {
            tracing::error!(path = %path.display(), "cannot write the match log: {e}");
        }
        let _ = written.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::random::SystemRandom;
    use crate::random::tests::Broken;

    fn temp_dir(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("tickwire-log-{name}-{}", std::process::id()))
    }

    #[tokio::test]
    async fn results_are_appended_as_json_lines() {
        let dir = temp_dir("append");
        let path = dir.join("nested").join("matches.jsonl");
        let log = MatchLog::open(&path, &SystemRandom::new()).unwrap();
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

    /// A crash inside a write left half a line: the restarted server cuts it off instead of
    /// running the next match on from it, and ids stay unique across the restart although
    /// match numbers start again.
    #[tokio::test]
    async fn a_torn_tail_is_cut_off_and_match_ids_are_unique_across_restarts() {
        let dir = temp_dir("torn");
        let path = dir.join("matches.jsonl");
        let log = MatchLog::open(&path, &SystemRandom::new()).unwrap();
        log.record(serde_json::json!({"matchNo": 1})).await.unwrap();
        drop(log);
        let mut torn = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        torn.write_all(br#"{"matchNo": 2, "winner"#).unwrap();
        drop(torn);

        let log = MatchLog::open(&path, &SystemRandom::new()).unwrap();
        log.record(serde_json::json!({"matchNo": 1})).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("whole lines only"))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_ne!(lines[0]["matchId"], lines[1]["matchId"]);
        assert!(lines[1]["matchId"].as_str().unwrap().ends_with("-1"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_log_with_no_whole_line_is_emptied() {
        let dir = temp_dir("none");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("matches.jsonl");
        std::fs::write(&path, b"{\"matchNo\": 1").unwrap();
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        assert_eq!(repair_torn_tail(&mut file).unwrap(), 13);
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_failed_random_source_refuses_to_open_the_log() {
        let dir = temp_dir("broken");
        let err = MatchLog::open(&dir.join("matches.jsonl"), &Broken).err();
        assert!(matches!(err, Some(OpenError::Random(_))));
    }
}
