//! The validation passes that turn a parsed document into a [`Plan`]. One
//! [`Loader`] carries what each pass learns to the next; each pass has a file:
//!
//! 0. [`vars`]: `[vars]`, the values given from outside, and `{name}`
//!    substitution (only for a pipeline with vars);
//! 1. [`top`]: `[pipeline]`, `[plugins]` (and, when asked, the plugin files:
//!    existence, sha256 pins, imports, metadata, checked in parallel),
//!    `[defaults]` and `[resources]`, with the per-task [`settings`] they share
//!    with tasks;
//! 2. [`ids`]: every `[tasks.<id>]` gets its dense [`TaskId`]s, [`foreach`]
//!    tasks one per expansion, so references can be resolved in any order;
//! 3. [`task`]: each task table is read once ([`raw`], [`command_fs`] with its
//!    [`workdir`], and the [`checks`] against plugin metadata and host files), then
//!    instantiated per expansion with its references resolved ([`resolve`]);
//!    large pipelines are built in parallel chunks, with the same result;
//! 4. [`outputs`], then the graph (self-dependencies are caught in 3, cycles by
//!    the caller).
//!
//! Under `--confine` ([`confine`]), every host path those passes read is
//! first checked to resolve inside the pipeline's directory or an allowed one.
//!
//! Every pass reports through the typed accessors of [`access`] into one list
//! of diagnostics, in file order, and keeps going.

mod access;
mod checks;
mod command_fs;
mod confine;
mod foreach;
mod ids;
mod map;
mod outputs;
mod raw;
mod resolve;
mod schema;
mod settings;
mod task;
mod top;
mod vars;
mod workdir;

use std::path::PathBuf;
use std::sync::Arc;

use super::LoadOptions;
use super::diag::Diagnostic;
use super::doc::{Doc, NodeId, ROOT};
use super::plugins::PluginCheck;
use crate::plan::{DetectedDefault, OutputSpec, Plan, PluginSpec, Resources, TaskId, TaskSpec, VarValue};

use foreach::Foreach;
use ids::Slot;
pub(super) use schema::json_schema;
use settings::Settings;
pub(super) use vars::{apply as apply_vars, wanted as wants_vars};

/// What the passes know about a pipeline, and the diagnostics they reported.
///
/// Cloned (cheaply: the tables of pass 2 are shared) to build tasks on other
/// threads; see [`Loader::build_tasks`].
#[derive(Clone)]
pub(super) struct Loader<'d, 's> {
    doc: &'d Doc<'s>,
    opts: &'d LoadOptions,
    base_dir: PathBuf,
    pub diags: Vec<Diagnostic>,
    plugins: Vec<PluginSpec>,
    plugin_ids: rustc_hash::FxHashMap<&'d str, u32>,
    /// Plugins declared but invalid: tasks using them get no second error.
    broken_plugins: Vec<&'d str>,
    checks: Vec<Option<PluginCheck>>,
    defaults: Settings,
    capacity: Resources,
    /// The capacity keys that were detected, not given, and where from.
    capacity_detected: Vec<DetectedDefault>,
    /// The `[tasks]` table, whose index maps ids to entries (set in pass 2).
    tasks: Option<NodeId>,
    /// Per entry of `[tasks]`, in file order: its slot (`None` for an invalid entry).
    entry_slots: Arc<Vec<Option<Slot>>>,
    /// How many entries have a slot.
    id_count: usize,
    foreach: Arc<Vec<Foreach>>,
    /// Per task: its plugin (for metadata checks on references), set in pass 2.
    task_plugin: Arc<Vec<u32>>,
    /// Tasks that capture stdout, and the output name.
    task_stdout: Arc<std::collections::HashMap<TaskId, &'d str>>,
    task_count: usize,
    /// `[vars]` entries and the node of each default (pass 0).
    declared: Vec<(String, NodeId)>,
    /// The vars and their values, for the plan.
    pub(super) vars: Vec<VarValue>,
    /// What binds the placeholders of the task being read, for messages:
    /// `foreach` or `map`.
    binder: &'static str,
    /// Under `--confine`: the directories host paths must resolve in.
    confine: Option<confine::Roots>,
}

impl<'d, 's> Loader<'d, 's> {
    pub(super) fn new(doc: &'d Doc<'s>, opts: &'d LoadOptions, base_dir: PathBuf) -> Self {
        Loader {
            doc,
            opts,
            diags: Vec::new(),
            plugins: Vec::new(),
            plugin_ids: Default::default(),
            broken_plugins: Vec::new(),
            checks: Vec::new(),
            defaults: Settings::default(),
            capacity: Resources::default(),
            capacity_detected: Vec::new(),
            tasks: None,
            entry_slots: Default::default(),
            id_count: 0,
            foreach: Default::default(),
            task_plugin: Default::default(),
            task_stdout: Default::default(),
            task_count: 0,
            declared: Vec::new(),
            vars: Vec::new(),
            binder: "foreach",
            confine: opts.confine.as_ref().map(|allow| confine::roots(&base_dir, allow)),
            base_dir,
        }
    }

    pub(super) fn finish(
        self,
        name: String,
        description: String,
        pipeline_file: PathBuf,
        tasks: Vec<TaskSpec>,
        outputs: Vec<OutputSpec>,
    ) -> (Plan, Vec<Diagnostic>) {
        (
            Plan {
                name,
                description,
                pipeline_file,
                base_dir: self.base_dir,
                plugins: self.plugins,
                tasks,
                outputs,
                capacity: self.capacity,
                capacity_detected: self.capacity_detected,
                vars: self.vars,
            },
            self.diags,
        )
    }

    pub(super) fn task_id_span(&self, id: &str) -> Option<std::ops::Range<usize>> {
        let tasks = self.doc.get(ROOT, "tasks")?;
        let base = id.split('[').next().unwrap_or(id);
        self.doc.get(tasks.value, base).map(|e| e.key_span.range())
    }
}
