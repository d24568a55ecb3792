//! `engine check` (validate and summarise) and `engine graph` (draw the plan).
//!
//! Both load the pipeline with plugin checks on; an invalid pipeline prints all
//! its diagnostics on stderr (coloured as [`super::color`] decides, and
//! with control characters escaped, see [`super::escape`]) and exits with
//! [`EXIT_INVALID`]. `engine check --format json` prints one JSON object on
//! stdout instead, valid or not.

use std::io::Write;
use std::path::Path;

use super::{CheckArgs, CheckFormat, EXIT_INVALID, EXIT_OK, GraphArgs, GraphFormat};
use crate::pipeline::{self, LoadOptions, VarSetting};
use crate::plan::Plan;

/// Load and validate a pipeline; on failure print the diagnostics and return the exit code.
pub(crate) fn load(
    path: &Path,
    resources: &Option<String>,
    vars: &[VarSetting],
    confine: Option<Vec<std::path::PathBuf>>,
) -> Result<Plan, i32> {
    let opts = LoadOptions { capacity_override: resources.clone(), check_plugins: true, vars: vars.to_vec(), confine };
    load_with(path, &opts)
}

/// The var values a command was given: those of `--vars FILE`, then `--set`.
pub(crate) fn given_vars(file: &Option<std::path::PathBuf>, set: &[VarSetting]) -> Result<Vec<VarSetting>, i32> {
    let mut vars = match file {
        Some(f) => pipeline::read_vars_file(f).map_err(print_diagnostics)?,
        None => Vec::new(),
    };
    vars.extend(set.iter().cloned());
    Ok(vars)
}

/// [`load`] with explicit options.
pub(crate) fn load_with(path: &Path, opts: &LoadOptions) -> Result<Plan, i32> {
    pipeline::load(path, opts).map_err(print_diagnostics)
}

fn print_diagnostics(mut d: pipeline::Diagnostics) -> i32 {
    d.map_text(|t| super::escape::one(t).into_owned());
    let text = if super::color::stderr() { d.to_colored_string() } else { d.to_string() };
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    EXIT_INVALID
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
    ) + &detected_summary(plan)
        + &vars_summary(plan)
}

/// One line per detected capacity key: `    memory:     2GiB (cgroup memory.max)`.
fn detected_summary(plan: &Plan) -> String {
    let mut s = String::new();
    for d in &plan.capacity_detected {
        let value = match d.key.as_str() {
            "cpu" => crate::plan::fmt_milli(plan.capacity.cpu_milli),
            "memory" => crate::units::format_size(plan.capacity.memory),
            _ => continue,
        };
        s.push_str(&format!("    {:<12}{value} ({})\n", format!("{}:", d.key), d.source));
    }
    s
}

/// The `vars:` lines of the summary (none for a pipeline without vars).
fn vars_summary(plan: &Plan) -> String {
    if plan.vars.is_empty() {
        return String::new();
    }
    let width = plan.vars.iter().map(|v| v.name.len()).max().unwrap_or(0);
    let mut s = String::from("  vars:\n");
    for v in &plan.vars {
        s.push_str(&format!("    {:width$} = {}\n", v.name, v.value));
    }
    s
}

pub fn check(a: &CheckArgs) -> i32 {
    if a.format == CheckFormat::Json {
        return check_json(a);
    }
    let vars = match given_vars(&a.vars_file, &a.set) {
        Ok(v) => v,
        Err(code) => return code,
    };
    match load(&a.pipeline, &a.resources, &vars, a.confine.allowed()) {
        Ok(plan) => {
            print!("{}", summary(&plan));
            // The process exits next; freeing a million-task plan would only cost time.
            std::mem::forget(plan);
            EXIT_OK
        }
        Err(code) => code,
    }
}

/// What `engine check --format json` prints (docs/pipeline.md, "Diagnostics as JSON").
#[derive(serde::Serialize)]
struct CheckJson<'a> {
    file: String,
    valid: bool,
    errors: usize,
    diagnostics: Vec<pipeline::diag::JsonDiagnostic<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<SummaryJson>,
}

#[derive(serde::Serialize)]
struct SummaryJson {
    pipeline: String,
    tasks: usize,
    edges: usize,
    plugins: usize,
}

/// `engine check --format json`.
fn check_json(a: &CheckArgs) -> i32 {
    let loaded = (|| {
        let mut vars = match &a.vars_file {
            Some(f) => pipeline::read_vars_file(f)?,
            None => Vec::new(),
        };
        vars.extend(a.set.iter().cloned());
        let opts = LoadOptions {
            capacity_override: a.resources.clone(),
            check_plugins: true,
            vars,
            confine: a.confine.allowed(),
        };
        pipeline::load(&a.pipeline, &opts)
    })();
    let file = a.pipeline.display().to_string();
    let (json, code) = match &loaded {
        Ok(plan) => {
            let summary = SummaryJson {
                pipeline: plan.name.clone(),
                tasks: plan.tasks.len(),
                edges: crate::graph::edge_count(plan),
                plugins: plan.plugins.len(),
            };
            let json = CheckJson { file, valid: true, errors: 0, diagnostics: Vec::new(), summary: Some(summary) };
            (serde_json::to_string_pretty(&json), EXIT_OK)
        }
        Err(d) => {
            let json = CheckJson { file, valid: false, errors: d.len(), diagnostics: d.to_json(), summary: None };
            (serde_json::to_string_pretty(&json), EXIT_INVALID)
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(json.unwrap_or_default().as_bytes());
    let _ = out.write_all(b"\n");
    if let Ok(plan) = loaded {
        std::mem::forget(plan);
    }
    code
}

pub fn graph(a: &GraphArgs) -> i32 {
    let vars = match given_vars(&a.vars_file, &a.set) {
        Ok(v) => v,
        Err(code) => return code,
    };
    match load(&a.pipeline, &a.resources, &vars, None) {
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
