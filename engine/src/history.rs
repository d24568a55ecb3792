//! What earlier runs of a pipeline left behind, for the commands that look
//! back: `engine cat`, `engine logs`, `engine run --dry-run` (which explains a
//! miss by what changed since the last run) and `engine gc`.
//!
//! # Layout
//!
//! Next to the per-task logs, under the runs directory of the store (the
//! store directory, or the pipeline's directory for a non-local store):
//!
//! ```text
//! runs/<run>/logs/<task>.log        per-task logs, appended per attempt
//! runs/<run>/tasks.bin              this module's record of the run (postcard)
//! runs/latest/<pipeline>.started    id of the last run started
//! runs/latest/<pipeline>.finished   id of the last run that ended
//! ```
//!
//! `<pipeline>` is the pipeline file's name plus a hash of its absolute path,
//! so pipelines sharing a store keep apart. Every file is written atomically;
//! a run killed before its end leaves its logs and its `.started` pointer,
//! never a torn `tasks.bin`.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::Digest;
use crate::task::cache::Fingerprints;
use crate::task::message::OutputBlob;

/// One run of a pipeline, as later commands need it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunHistory {
    pub run_id: String,
    /// The pipeline file (absolute).
    pub pipeline: String,
    /// The store it used (as `--store` would name it).
    pub store: String,
    pub tasks: Vec<TaskHistory>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskHistory {
    pub id: String,
    /// `succeeded`, `failed`, `skipped` or `cancelled`.
    pub state: String,
    pub key: Option<Digest>,
    pub parts: Option<Fingerprints>,
    pub outputs: Vec<OutputBlob>,
}

/// [`RunHistory`] borrowed, for writing: encodes to the same bytes.
/// `tasks` makes the iterator over the tasks (serde takes it by value).
#[derive(Serialize)]
#[serde(bound = "Tasks<F>: Serialize")]
pub struct RunHistoryRef<'a, F> {
    pub run_id: &'a str,
    pub pipeline: &'a str,
    pub store: &'a str,
    pub tasks: Tasks<F>,
}

/// [`TaskHistory`] borrowed: encodes to the same bytes.
#[derive(Serialize)]
pub struct TaskHistoryRef<'a> {
    pub id: &'a str,
    pub state: &'a str,
    pub key: Option<&'a Digest>,
    pub parts: Option<&'a Fingerprints>,
    pub outputs: &'a [OutputBlob],
}

/// A sequence serialized from the iterator its closure makes.
pub struct Tasks<F>(pub F);

impl<'a, F, I> Serialize for Tasks<F>
where
    F: Fn() -> I,
    I: ExactSizeIterator<Item = TaskHistoryRef<'a>>,
{
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq((self.0)())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("no run of {pipeline} has {what} yet (looked in {dir})")]
    NoRun { pipeline: String, what: &'static str, dir: String },
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
}

/// The runs directory of a pipeline's store.
pub struct Runs {
    dir: PathBuf,
    pipeline: PathBuf,
}

impl Runs {
    /// The runs directory `dir` (e.g. `STORE/runs`) for `pipeline_file`.
    pub fn new(dir: PathBuf, pipeline_file: &Path) -> Runs {
        Runs { dir, pipeline: pipeline_file.to_path_buf() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of run `run_id`.
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.dir.join(run_id)
    }

    fn pointer(&self, which: &str) -> PathBuf {
        let name = self.pipeline.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let hash = Digest::of(self.pipeline.as_os_str().as_encoded_bytes()).to_hex();
        self.dir.join("latest").join(format!("{name}-{}.{which}", &hash[..16]))
    }

    /// Note that run `run_id` started (its logs are where `engine logs` looks).
    pub fn started(&self, run_id: &str) -> std::io::Result<()> {
        write_atomic(&self.pointer("started"), run_id.as_bytes())
    }

    /// Record the finished run `h` and point `.finished` at it.
    pub fn finished(&self, h: &RunHistory) -> std::io::Result<()> {
        let tasks = || {
            h.tasks.iter().map(|t| TaskHistoryRef {
                id: &t.id,
                state: &t.state,
                key: t.key.as_ref(),
                parts: t.parts.as_ref(),
                outputs: &t.outputs,
            })
        };
        self.finished_from(&RunHistoryRef {
            run_id: &h.run_id,
            pipeline: &h.pipeline,
            store: &h.store,
            tasks: Tasks(tasks),
        })
    }

    /// [`Runs::finished`] from borrowed parts: a run of many tasks is
    /// encoded straight into the file, without a copy of each task's
    /// history or of the whole encoding in memory.
    pub fn finished_from<F>(&self, h: &RunHistoryRef<'_, F>) -> std::io::Result<()>
    where
        Tasks<F>: Serialize,
    {
        let dest = self.run_dir(h.run_id).join("tasks.bin");
        write_atomic_with(&dest, |w| postcard::to_io(h, w).map(|_| ()).map_err(std::io::Error::other))?;
        write_atomic(&self.pointer("finished"), h.run_id.as_bytes())
    }

    /// The id of the last run started (`started`) or finished (`finished`).
    pub fn latest(&self, which: &'static str) -> Result<String, HistoryError> {
        let p = self.pointer(which);
        match fs::read_to_string(&p) {
            Ok(s) => Ok(s.trim().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(HistoryError::NoRun {
                pipeline: self.pipeline.display().to_string(),
                what: if which == "started" { "started" } else { "finished" },
                dir: self.dir.display().to_string(),
            }),
            Err(e) => Err(HistoryError::Read { path: p.display().to_string(), message: e.to_string() }),
        }
    }

    /// The last finished run.
    pub fn last(&self) -> Result<RunHistory, HistoryError> {
        let id = self.latest("finished")?;
        let p = self.run_dir(&id).join("tasks.bin");
        let bytes =
            fs::read(&p).map_err(|e| HistoryError::Read { path: p.display().to_string(), message: e.to_string() })?;
        postcard::from_bytes(&bytes).map_err(|e| HistoryError::Read {
            path: p.display().to_string(),
            message: format!("not a run record: {e}"),
        })
    }

    /// Ids of every run recorded in the directory, oldest first (run ids
    /// start with their start time).
    pub fn all(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("tasks.bin").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort_by_key(|id| run_order(id));
        v
    }

    /// Read the record of run `id`.
    pub fn read(&self, id: &str) -> Result<RunHistory, HistoryError> {
        let p = self.run_dir(id).join("tasks.bin");
        let bytes =
            fs::read(&p).map_err(|e| HistoryError::Read { path: p.display().to_string(), message: e.to_string() })?;
        postcard::from_bytes(&bytes).map_err(|e| HistoryError::Read {
            path: p.display().to_string(),
            message: format!("not a run record: {e}"),
        })
    }
}

/// Sort key of a run id: its start time first.
pub fn run_order(id: &str) -> (u64, String) {
    (id.split('-').next().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0), id.to_string())
}

fn write_atomic(dest: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(dest, |w| std::io::Write::write_all(w, bytes))
}

/// Write `dest` through `fill`, atomically (a temp file renamed over it).
fn write_atomic_with(
    dest: &Path,
    fill: impl FnOnce(&mut std::io::BufWriter<&mut tempfile::NamedTempFile>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 16, &mut tmp);
    fill(&mut w)?;
    std::io::Write::flush(&mut w)?;
    drop(w);
    tmp.persist(dest).map_err(|e| e.error)?;
    Ok(())
}

/// The log of attempt `attempt` out of a task's log file, where attempts
/// after the first start with a `--- attempt N ---` line.
pub fn attempt_log(log: &str, attempt: u32) -> Option<String> {
    let mut current = 1;
    let mut out = String::new();
    let mut seen = attempt == 1;
    for line in log.split_inclusive('\n') {
        if let Some(n) = line.trim_end().strip_prefix("--- attempt ").and_then(|r| r.strip_suffix(" ---"))
            && let Ok(n) = n.parse::<u32>()
        {
            current = n;
            seen |= n == attempt;
            continue;
        }
        if current == attempt {
            out.push_str(line);
        }
    }
    seen.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_are_cut_out_of_a_log() {
        let log = "one\n--- attempt 2 ---\ntwo\ntwo b\n--- attempt 3 ---\nthree\n";
        assert_eq!(attempt_log(log, 1).as_deref(), Some("one\n"));
        assert_eq!(attempt_log(log, 2).as_deref(), Some("two\ntwo b\n"));
        assert_eq!(attempt_log(log, 3).as_deref(), Some("three\n"));
        assert_eq!(attempt_log(log, 4), None);
    }

    #[test]
    fn a_run_written_from_borrowed_parts_reads_back_as_the_owned_history() {
        let h = RunHistory {
            run_id: "1-2".into(),
            pipeline: "/p/pipeline.toml".into(),
            store: "/p/.engine-store".into(),
            tasks: vec![
                TaskHistory {
                    id: "a".into(),
                    state: "succeeded".into(),
                    key: Some(Digest::of(b"k")),
                    parts: Some(Fingerprints { fixed: [1, 2, 3, u64::MAX, 5, 6, 7], inputs: vec![("x".into(), 9)] }),
                    outputs: vec![OutputBlob {
                        name: "out".into(),
                        blob: crate::store::BlobRef { digest: Digest::of(b"o"), len: 1 },
                    }],
                },
                TaskHistory { id: "b".into(), state: "skipped".into(), key: None, parts: None, outputs: vec![] },
            ],
        };
        let dir = tempfile::tempdir().expect("a temp dir");
        let runs = Runs::new(dir.path().join("runs"), Path::new("/p/pipeline.toml"));
        runs.finished(&h).expect("written");
        let bytes = fs::read(runs.run_dir("1-2").join("tasks.bin")).expect("tasks.bin");
        assert_eq!(bytes, postcard::to_allocvec(&h).expect("encoded"));
        let back = runs.last().expect("the last run");
        assert_eq!(format!("{back:?}"), format!("{h:?}"));
    }
}
