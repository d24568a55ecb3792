//! The wasmtime host: one shared engine, the compiled-module cache, the SDK ABI
//! and command tasks, and the sandbox limits.
//!
//! (Placeholder API on `main` until the runtime branch lands.)

pub mod inspect;

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::exec::message::{TaskFailure, TaskMessage, TaskMetrics, TaskResult};
use crate::store::{BlobStore, Digest};

pub struct RuntimeConfig {
    pub cache_dir: PathBuf,
    pub max_instances: u32,
    pub max_task_memory: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot read plugin {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub struct LoadedPlugin {
    pub digest: Digest,
}

pub struct Runtime {}

impl Runtime {
    pub fn new(_cfg: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        Ok(Runtime {})
    }
    pub fn load(&self, path: &Path) -> Result<LoadedPlugin, RuntimeError> {
        let bytes = std::fs::read(path).map_err(|e| RuntimeError::Read {
            path: path.into(),
            source: e,
        })?;
        Ok(LoadedPlugin {
            digest: Digest::of(&bytes),
        })
    }
    pub fn run_task(
        &self,
        msg: &TaskMessage,
        _store: &dyn BlobStore,
        worker: u32,
        _run_start: Instant,
    ) -> TaskResult {
        TaskResult {
            task: msg.task,
            attempt: msg.attempt,
            outcome: Err(TaskFailure::Infra {
                message: "runtime not implemented".into(),
            }),
            log: vec![],
            metrics: TaskMetrics {
                worker,
                ..Default::default()
            },
        }
    }
    pub fn cancel_all(&self) {}
}
