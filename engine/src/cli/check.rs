//! `engine check` (validate and summarise) and `engine graph` (draw the plan).
//!
//! Both load the pipeline with plugin checks on; an invalid pipeline prints all
//! its diagnostics on stderr (coloured only when stderr is a terminal, and
//! with control characters escaped, see [`super::escape`]) and exits with
//! [`EXIT_INVALID`].

use std::io::{IsTerminal, Write};
use std::path::Path;

use super::{CheckArgs, EXIT_INVALID, EXIT_OK, GraphArgs, GraphFormat};
use crate::pipeline::{self, LoadOptions};
use crate::plan::Plan;

/// Load and validate a pipeline; on failure print the diagnostics and return the exit code.
pub(crate) fn load(path: &Path, resources: &Option<String>) -> Result<Plan, i32> {
    load_with(path, &LoadOptions { capacity_override: resources.clone(), check_plugins: true })
}

/// [`load`] with explicit options.
pub(crate) fn load_with(path: &Path, opts: &LoadOptions) -> Result<Plan, i32> {
    pipeline::load(path, opts).map_err(|mut d| {
        d.map_text(|t| super::escape::one(t).into_owned());
        let text = if std::io::stderr().is_terminal() { d.to_colored_string() } else { d.to_string() };
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        EXIT_INVALID
    })
}

/// The summary `engine check` prints for a valid pipeline.
pub fn summary(plan: &Plan) -> String {
    let n = plan.tasks.len();
    let longest = match crate::graph::longest_path(plan) {
        Some((len, a, b)) => {
            let (a, b) = (&plan.tasks[a as usize].id, &plan.tasks[b as usize].id);
            if len == 1 { format!("1 task ({a})") } else { format!("{len} tasks ({a} → {b})") }
        }
        None => "0 tasks".to_string(),
    };
    format!(
        "pipeline `{}` is valid\n  tasks:        {}\n  edges:        {}\n  plugins:      {}\n  longest path: {}\n  capacity:     {}\n",
        plan.name,
        n,
        crate::graph::edge_count(plan),
        plan.plugins.len(),
        longest,
        pipeline::resources::format_resources(&plan.capacity),
    )
}

pub fn check(a: &CheckArgs) -> i32 {
    match load(&a.pipeline, &a.resources) {
        Ok(plan) => {
            print!("{}", summary(&plan));
            // The process exits next; freeing a million-task plan would only cost time.
            std::mem::forget(plan);
            EXIT_OK
        }
        Err(code) => code,
    }
}

pub fn graph(a: &GraphArgs) -> i32 {
    match load(&a.pipeline, &a.resources) {
        Ok(plan) => {
            let s = match a.format {
                GraphFormat::Dot => crate::graph::to_dot(&plan),
                GraphFormat::Mermaid => crate::graph::to_mermaid(&plan),
                GraphFormat::Json => crate::graph::to_json(&plan),
            };
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(s.as_bytes());
            std::mem::forget(plan);
            EXIT_OK
        }
        Err(code) => code,
    }
}
