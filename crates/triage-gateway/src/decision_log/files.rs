//! Decision records as rotating JSONL files (`telemetry.decision_log_files`): one JSON
//! object a line, the same text as the Redis record. A bounded queue and one writer thread
//! keep file I/O off the request path; when the queue is full a record is dropped and
//! counted (`triage_decision_log_dropped_total`), never waited for.
//!
//! `DIR/decisions.jsonl` is the current file; past `max_file_bytes` it becomes
//! `decisions.1.jsonl`, the older ones move up one number, and the one that would pass
//! `max_files` (the current file included) is deleted.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use triage_core::config::DecisionLogFilesConfig;

/// Name of the file being written.
pub const CURRENT_FILE: &str = "decisions.jsonl";

/// Name of the `n`th rotated file (1 is the newest).
pub fn rotated_file(n: u32) -> String {
    format!("decisions.{n}.jsonl")
}

/// Appends lines to the current file and rotates it by size.
#[derive(Debug)]
pub struct RotatingWriter {
    dir: PathBuf,
    max_file_bytes: u64,
    max_files: u32,
    file: Option<BufWriter<File>>,
    size: u64,
}

impl RotatingWriter {
    /// A writer in `dir` (created when missing), appending to an existing current file.
    pub fn open(dir: &Path, max_file_bytes: u64, max_files: u32) -> io::Result<RotatingWriter> {
        std::fs::create_dir_all(dir)?;
        let mut w =
            RotatingWriter { dir: dir.to_path_buf(), max_file_bytes, max_files: max_files.max(1), file: None, size: 0 };
        w.reopen(false)?;
        Ok(w)
    }

    fn reopen(&mut self, truncate: bool) -> io::Result<()> {
        let path = self.dir.join(CURRENT_FILE);
        let f = OpenOptions::new().create(true).append(!truncate).write(true).truncate(truncate).open(&path)?;
        self.size = f.metadata()?.len();
        self.file = Some(BufWriter::new(f));
        Ok(())
    }

    /// Writes `line` and a newline; rotates first when the line would pass the size cap
    /// (a line longer than the cap gets a file of its own).
    pub fn write_line(&mut self, line: &str) -> io::Result<()> {
        let n = line.len() as u64 + 1;
        if self.size > 0 && self.size + n > self.max_file_bytes {
            self.rotate()?;
        }
        if self.file.is_none() {
            self.reopen(false)?;
        }
        let Some(f) = self.file.as_mut() else { return Err(io::Error::other("decision log file not open")) };
        // One write of line and newline: the buffer flushes whole lines, so a reader
        // following the file never sees a record cut in two by a flush.
        let mut record = Vec::with_capacity(line.len() + 1);
        record.extend_from_slice(line.as_bytes());
        record.push(b'\n');
        f.write_all(&record)?;
        self.size += n;
        Ok(())
    }

    /// Pushes buffered lines to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }

    fn rotate(&mut self) -> io::Result<()> {
        if let Some(mut f) = self.file.take() {
            f.flush()?;
        }
        let path = |name: String| self.dir.join(name);
        if self.max_files == 1 {
            return self.reopen(true);
        }
        let oldest = path(rotated_file(self.max_files - 1));
        match std::fs::remove_file(&oldest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        for i in (1..self.max_files - 1).rev() {
            let from = path(rotated_file(i));
            if from.exists() {
                std::fs::rename(&from, path(rotated_file(i + 1)))?;
            }
        }
        std::fs::rename(path(CURRENT_FILE.to_string()), path(rotated_file(1)))?;
        self.reopen(true)
    }
}

/// The queue in front of the writer thread.
#[derive(Debug, Clone)]
pub(crate) struct FileSink {
    tx: SyncSender<String>,
}

impl FileSink {
    /// Starts the writer thread for `cfg`, with `dir` already resolved.
    pub(crate) fn start(cfg: &DecisionLogFilesConfig, dir: PathBuf) -> FileSink {
        let (tx, rx) = sync_channel::<String>(cfg.queue.max(1));
        let (max_bytes, max_files) = (cfg.max_file_bytes, cfg.max_files);
        let spawned = std::thread::Builder::new()
            .name("decision-log".into())
            .spawn(move || writer_loop(rx, &dir, max_bytes, max_files));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "decision log file writer not started; records will be dropped");
        }
        FileSink { tx }
    }

    /// Queues one record line; drops and counts it when the writer is behind or gone.
    pub(crate) fn push(&self, line: String) {
        match self.tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                triage_core::metrics::global().decision_log_dropped.inc();
            }
        }
    }
}

fn writer_loop(rx: Receiver<String>, dir: &Path, max_bytes: u64, max_files: u32) {
    let mut writer: Option<RotatingWriter> = None;
    let mut errors = 0u64;
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        // Write whatever is queued, then flush once: one syscall per burst, not per line.
        while let Some(line) = next.take() {
            let res = match writer.as_mut() {
                Some(w) => w.write_line(&line),
                None => RotatingWriter::open(dir, max_bytes, max_files).and_then(|mut w| {
                    let r = w.write_line(&line);
                    writer = Some(w);
                    r
                }),
            };
            if let Err(e) = res {
                triage_core::metrics::global().decision_log_dropped.inc();
                if errors.is_multiple_of(1000) {
                    tracing::error!(dir = %dir.display(), error = %e, "decision log file write failed");
                }
                errors += 1;
            }
            next = rx.try_recv().ok();
        }
        if let Some(w) = writer.as_mut()
            && let Err(e) = w.flush()
        {
            tracing::error!(dir = %dir.display(), error = %e, "decision log file flush failed");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn rotates_by_size_and_keeps_at_most_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = RotatingWriter::open(dir.path(), 100, 3).unwrap();
        // 30-byte lines (29 + newline): three fit in a 100-byte file, the fourth rotates.
        let line = |i: usize| format!("{{\"n\":{i:>3},\"pad\":\"xxxxxxxxxxx\"}}");
        assert_eq!(line(1).len(), 29);
        for i in 0..3 {
            w.write_line(&line(i)).unwrap();
        }
        w.flush().unwrap();
        assert_eq!(files(dir.path()), [CURRENT_FILE]);
        w.write_line(&line(3)).unwrap();
        w.flush().unwrap();
        assert_eq!(files(dir.path()), ["decisions.1.jsonl", CURRENT_FILE]);
        for i in 4..20 {
            w.write_line(&line(i)).unwrap();
        }
        w.flush().unwrap();
        // Capped at 3 files: the current one and two rotated; the oldest lines are gone.
        assert_eq!(files(dir.path()), ["decisions.1.jsonl", "decisions.2.jsonl", CURRENT_FILE]);
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
        for f in files(dir.path()) {
            assert!(std::fs::metadata(dir.path().join(&f)).unwrap().len() <= 100, "{f}");
            for l in read(&f).lines() {
                serde_json::from_str::<serde_json::Value>(l).unwrap();
            }
        }
        // Lines stay in order across files: .2 oldest, then .1, then the current file.
        let all: Vec<String> = ["decisions.2.jsonl", "decisions.1.jsonl", CURRENT_FILE]
            .iter()
            .flat_map(|f| read(f).lines().map(str::to_string).collect::<Vec<_>>())
            .collect();
        assert_eq!(all.last().unwrap(), &line(19));
        let ns: Vec<u64> =
            all.iter().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["n"].as_u64().unwrap()).collect();
        assert!(ns.windows(2).all(|w| w[1] == w[0] + 1), "{ns:?}");
        assert_eq!(ns.len(), 8, "{ns:?}");
    }

    #[test]
    fn reopening_appends_to_the_current_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = RotatingWriter::open(dir.path(), 1000, 2).unwrap();
        w.write_line("{\"a\":1}").unwrap();
        w.flush().unwrap();
        drop(w);
        let mut w = RotatingWriter::open(dir.path(), 1000, 2).unwrap();
        w.write_line("{\"a\":2}").unwrap();
        w.flush().unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join(CURRENT_FILE)).unwrap(), "{\"a\":1}\n{\"a\":2}\n");
    }

    #[test]
    fn one_file_cap_truncates_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = RotatingWriter::open(dir.path(), 20, 1).unwrap();
        for i in 0..5 {
            w.write_line(&format!("{{\"line\":{i}}}")).unwrap();
        }
        w.flush().unwrap();
        assert_eq!(files(dir.path()), [CURRENT_FILE]);
        assert!(std::fs::read_to_string(dir.path().join(CURRENT_FILE)).unwrap().ends_with("{\"line\":4}\n"));
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_blocking() {
        // Nobody drains this queue: it fills after two records.
        let (tx, _rx) = sync_channel::<String>(2);
        let sink = FileSink { tx };
        let before = triage_core::metrics::global().decision_log_dropped.get();
        for _ in 0..5 {
            sink.push("{}".into());
        }
        assert_eq!(triage_core::metrics::global().decision_log_dropped.get() - before, 3);
    }
}
