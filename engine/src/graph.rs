//! Graph algorithms and drawings over the resolved plan (petgraph).
//!
//! Edges point from a task to each task that takes one of its outputs (the
//! direction data flows). This module finds cycles with their path, computes
//! the longest path (in tasks) for `engine check`, and renders the graph as
//! Graphviz dot, Mermaid or JSON for `engine graph`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;

use petgraph::Directed;
use petgraph::algo::{kosaraju_scc, toposort};
use petgraph::graph::{Graph, NodeIndex};

use crate::plan::{Plan, TaskId, TaskSpec};

type G = Graph<(), (), Directed, u32>;

fn build(tasks: &[TaskSpec]) -> G {
    let edges = tasks.iter().map(|t| t.deps.len()).sum();
    let mut g = G::with_capacity(tasks.len(), edges);
    for _ in tasks {
        g.add_node(());
    }
    for (i, t) in tasks.iter().enumerate() {
        for &d in &t.deps {
            if (d as usize) < tasks.len() && d as usize != i {
                g.add_edge(NodeIndex::new(d as usize), NodeIndex::new(i), ());
            }
        }
    }
    g
}

/// True when every task depends only on tasks before it in the file (the
/// common case): the graph is then acyclic and file order is a topological
/// order, found in one linear scan without building a graph. Dependencies that
/// [`build`] ignores (on the task itself, or out of range) are ignored here too.
fn file_order_is_topological(tasks: &[TaskSpec]) -> bool {
    let n = tasks.len();
    tasks.iter().enumerate().all(|(i, t)| t.deps.iter().all(|&d| d as usize <= i || d as usize >= n))
}

/// Every cycle as a list of tasks in data-flow order (each takes an output of
/// the one before it, and the first takes one of the last), one per strongly
/// connected component, starting at its first task in file order. Empty when
/// the graph is acyclic.
pub fn find_cycles(tasks: &[TaskSpec]) -> Vec<Vec<TaskId>> {
    if file_order_is_topological(tasks) {
        return Vec::new();
    }
    let g = build(tasks);
    if toposort(&g, None).is_ok() {
        return Vec::new();
    }
    let mut cycles = Vec::new();
    for scc in kosaraju_scc(&g) {
        if scc.len() < 2 {
            continue;
        }
        let members: HashSet<NodeIndex> = scc.iter().copied().collect();
        let Some(&start) = scc.iter().min() else { continue };
        // Shortest way around, by breadth-first search from `start` back to it.
        let mut parent: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        let mut last = None;
        'bfs: while let Some(v) = queue.pop_front() {
            let mut next: Vec<NodeIndex> = g.neighbors(v).filter(|n| members.contains(n)).collect();
            next.sort();
            for n in next {
                if n == start {
                    last = Some(v);
                    break 'bfs;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(n) {
                    e.insert(v);
                    queue.push_back(n);
                }
            }
        }
        let Some(mut v) = last else { continue };
        let mut path = vec![v.index() as TaskId];
        while v != start {
            let Some(&p) = parent.get(&v) else { break };
            v = p;
            path.push(v.index() as TaskId);
        }
        path.reverse();
        cycles.push(path);
    }
    cycles.sort();
    cycles
}

/// The longest chain of dependent tasks: (number of tasks, first, last).
/// `None` for an empty plan or a cyclic one.
pub fn longest_path(plan: &Plan) -> Option<(usize, TaskId, TaskId)> {
    let n = plan.tasks.len();
    // Any topological order gives the same result (each task only needs its
    // dependencies done first); file order usually is one and costs nothing.
    let order: Vec<NodeIndex> = if file_order_is_topological(&plan.tasks) {
        (0..n).map(NodeIndex::new).collect()
    } else {
        toposort(&build(&plan.tasks), None).ok()?
    };
    // depth[v] = tasks on the longest chain ending at v; from[v] = its first task.
    let mut depth = vec![0u32; n];
    let mut from = vec![0 as TaskId; n];
    for v in order {
        let i = v.index();
        let best = plan.tasks[i]
            .deps
            .iter()
            .filter(|&&d| (d as usize) < n && d as usize != i)
            .max_by(|&&a, &&b| depth[a as usize].cmp(&depth[b as usize]).then(b.cmp(&a)));
        match best {
            Some(&d) => {
                depth[i] = depth[d as usize] + 1;
                from[i] = from[d as usize];
            }
            None => {
                depth[i] = 1;
                from[i] = i as TaskId;
            }
        }
    }
    let (end, &len) = depth.iter().enumerate().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))?;
    Some((len as usize, from[end], end as TaskId))
}

/// Number of edges (distinct task-to-task dependencies).
pub fn edge_count(plan: &Plan) -> usize {
    plan.tasks.iter().map(|t| t.deps.len()).sum()
}

fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// How a mapped task is drawn: its label id (`count[*]`), and the label of
/// its dynamic edge from the producer (`*`, or `OUTPUT.lines`).
fn mapped(t: &crate::plan::TaskSpec) -> (std::borrow::Cow<'_, str>, Option<(u32, String)>) {
    match &t.map {
        None => (t.id.as_str().into(), None),
        Some(m) => {
            let edge = match &m.lines {
                None => "*".to_string(),
                Some(o) => format!("{o}.lines"),
            };
            (format!("{}[*]", t.id).into(), Some((m.task, edge)))
        }
    }
}

/// Graphviz dot: one node per task (labelled with its id and plugin), one edge
/// per dependency. A mapped task is a dashed node labelled `ID[*]`, and its
/// producer's edge to it is dashed and labelled `map *` (or `map OUTPUT.lines`).
pub fn to_dot(plan: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "digraph {} {{", quote(&plan.name));
    s.push_str("  rankdir=LR;\n  node [shape=box];\n");
    for t in &plan.tasks {
        let plugin = plan.plugins.get(t.plugin as usize).map(|p| p.name.as_str()).unwrap_or("");
        let (label, map) = mapped(t);
        let style = if map.is_some() { ", style=dashed" } else { "" };
        let _ = writeln!(s, "  {} [label={}{style}];", quote(&t.id), quote(&format!("{label}\n{plugin}")));
    }
    for t in &plan.tasks {
        let map = mapped(t).1;
        for &d in &t.deps {
            let from = quote(&plan.tasks[d as usize].id);
            match &map {
                Some((p, edge)) if *p == d => {
                    let _ = writeln!(
                        s,
                        "  {from} -> {} [style=dashed, label={}];",
                        quote(&t.id),
                        quote(&format!("map {edge}"))
                    );
                }
                _ => {
                    let _ = writeln!(s, "  {from} -> {};", quote(&t.id));
                }
            }
        }
    }
    s.push_str("}\n");
    s
}

/// Mermaid flowchart: nodes are named `t0`, `t1`, ... in task order and
/// labelled with the task id and plugin; a mapped task is labelled `ID[*]`
/// and its producer's edge to it is dotted, `tP -. "map *" .-> tN`.
pub fn to_mermaid(plan: &Plan) -> String {
    let mut s = String::from("flowchart LR\n");
    for (i, t) in plan.tasks.iter().enumerate() {
        let plugin = plan.plugins.get(t.plugin as usize).map(|p| p.name.as_str()).unwrap_or("");
        let label = format!("{}<br/>{}", mapped(t).0, plugin).replace('"', "#quot;");
        let _ = writeln!(s, "  t{i}[\"{label}\"]");
    }
    for (i, t) in plan.tasks.iter().enumerate() {
        let map = mapped(t).1;
        for &d in &t.deps {
            match &map {
                Some((p, edge)) if *p == d => {
                    let _ = writeln!(s, "  t{d} -. \"map {edge}\" .-> t{i}");
                }
                _ => {
                    let _ = writeln!(s, "  t{d} --> t{i}");
                }
            }
        }
    }
    s
}

/// The resolved plan as pretty JSON (with a trailing newline).
pub fn to_json(plan: &Plan) -> String {
    let mut s =
        serde_json::to_string_pretty(plan).unwrap_or_else(|e| format!("{{\"error\": {}}}", quote(&e.to_string())));
    s.push('\n');
    s
}
