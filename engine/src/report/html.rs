//! The HTML report (`engine report RUN.json --html FILE`, `engine run
//! --report-html FILE`): one self-contained, offline page rendered from the
//! JSON report — a timeline (one row per worker, one bar per attempt),
//! duration histograms per task family, peak memory against the request,
//! cached vs executed counts, the slowest tasks and the failures with the
//! tail of their logs.
//!
//! The page is plain HTML with inline CSS and SVG, generated here; it loads
//! nothing (no script, no font, no URL). It stays small for 100k tasks by
//! aggregating: at most [`MAX_BARS`] timeline bars (the longest attempts),
//! [`MAX_FAMILIES`] histograms and memory rows, [`MAX_FAILURES`] failures,
//! each section saying what it left out. Everything a plugin controls (task
//! ids come from the pipeline, but error messages and logs from plugins) is
//! HTML-escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::units::{format_duration, format_size};

/// Most attempts drawn on the timeline (the longest ones).
pub const MAX_BARS: usize = 2000;
/// Most task families with a histogram, and most rows of the memory table.
pub const MAX_FAMILIES: usize = 50;
/// Most failed tasks listed.
pub const MAX_FAILURES: usize = 50;
/// Lines of a failed task's log shown.
pub const LOG_TAIL_LINES: usize = 10;
/// Tasks in the slowest list.
pub const SLOWEST: usize = 10;
/// Buckets of a duration histogram.
const BUCKETS: usize = 20;

/// The JSON report, as much of it as the page shows.
#[derive(Debug, Deserialize)]
pub struct RunReport {
    pub pipeline: String,
    pub status: String,
    pub executor: String,
    pub workers: u64,
    pub wall_ms: f64,
    pub counts: Counts,
    pub tasks: Vec<TaskEntry>,
}

#[derive(Debug, Deserialize)]
pub struct Counts {
    pub total: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub skipped: u64,
    pub cancelled: u64,
    #[serde(default)]
    pub cached: u64,
}

#[derive(Debug, Deserialize)]
pub struct TaskEntry {
    pub id: String,
    pub state: String,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub cached: bool,
    pub worker: Option<u32>,
    pub start_us: Option<u64>,
    pub duration_us: Option<u64>,
    #[serde(default)]
    pub earlier_attempts: Vec<Attempt>,
    pub requested_memory: Option<u64>,
    pub peak_memory: Option<u64>,
    pub error: Option<ErrorEntry>,
    pub log: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Attempt {
    pub worker: u32,
    pub start_us: u64,
    pub duration_us: u64,
    pub outcome: String,
}

#[derive(Debug, Deserialize)]
pub struct ErrorEntry {
    pub kind: String,
    pub message: String,
}

/// A task's family: its id without the `[key]` of an expansion
/// (`count[3]` → `count[*]`); a plain id is its own family.
pub fn family(id: &str) -> String {
    match id.find('[') {
        Some(i) if id.ends_with(']') => format!("{}[*]", &id[..i]),
        _ => id.to_string(),
    }
}

/// A size for people: `512 MiB`, `1.13 MiB`, `64 KiB`.
pub fn spaced_size(bytes: u64) -> String {
    let s = format_size(bytes);
    match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => format!("{} {}", &s[..i], &s[i..]),
        None => s,
    }
}

/// The memory hint of a task or family: `requested 512 MiB, used at most 31 MiB`.
pub fn memory_hint(requested: u64, peak: u64) -> String {
    format!("requested {}, used at most {}", spaced_size(requested), spaced_size(peak))
}

/// Escape text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            // Controls other than newline and tab, and the bidirectional
            // controls, are shown, not obeyed (as on a terminal, docs/security.md).
            c if (c.is_control() && c != '\n' && c != '\t')
                || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                o.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => o.push(c),
        }
    }
    // A URL in plugin text stays text: the file holds no `http://` at all.
    if o.contains("://") { o.replace("://", ":&#47;&#47;") } else { o }
}

fn dur(us: u64) -> String {
    format_duration(Duration::from_micros(us))
}

/// One bar of the timeline.
struct Bar<'a> {
    id: &'a str,
    worker: u32,
    start_us: u64,
    duration_us: u64,
    /// `ok` or a failure kind.
    outcome: &'a str,
}

/// Read the last `n` lines of a log file, lossily decoded (at most its last 64 KiB).
fn log_tail(path: &Path, n: usize) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(64 << 10))).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    Some(lines[lines.len().saturating_sub(n)..].join("\n"))
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}\
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}\
table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left;border-bottom:1px solid #eee}\
td.n{text-align:right;font-variant-numeric:tabular-nums}.note{color:#666}\
.ok{fill:#4a90d9}.fail{fill:#d9534f}.bar{stroke:#fff;stroke-width:1}.hist rect{fill:#6a9f58}.mem{fill:#e0e0e0}.used{fill:#e6a23c}\
svg text{font-size:11px;fill:#333}pre{background:#f6f6f6;padding:6px;overflow-x:auto;margin:4px 0}\
.failure{margin-bottom:1em}.status-succeeded{color:#2e7d32}.status-failed,.status-interrupted{color:#c62828}";

/// Render the page.
pub fn render(r: &RunReport) -> String {
    let mut h = String::with_capacity(64 << 10);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<title>engine run report: {name}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
<h1>Run of <code>{name}</code>: <span class=\"status-{st}\">{st}</span></h1>\n\
<p id=\"summary\">{total} tasks: {ok} succeeded, {failed} failed, {skipped} skipped, {cancelled} cancelled \
in {wall} on {workers} workers (executor <code>{exec}</code>).</p>\n",
        name = esc(&r.pipeline),
        st = esc(&r.status),
        total = r.counts.total,
        ok = r.counts.succeeded,
        failed = r.counts.failed,
        skipped = r.counts.skipped,
        cancelled = r.counts.cancelled,
        wall = format_duration(Duration::from_secs_f64(r.wall_ms.max(0.0) / 1000.0)),
        workers = r.workers,
        exec = esc(&r.executor),
    );
    cached_section(&mut h, r);
    timeline(&mut h, r);
    histograms(&mut h, r);
    memory(&mut h, r);
    slowest(&mut h, r);
    failures(&mut h, r);
    h.push_str("</body>\n</html>\n");
    h
}

fn cached_section(h: &mut String, r: &RunReport) {
    let cached = r.tasks.iter().filter(|t| t.cached).count();
    let executed = r.tasks.iter().filter(|t| t.attempts > 0).count();
    let other = r.tasks.len().saturating_sub(cached + executed);
    let total = r.tasks.len().max(1) as f64;
    let w = |n: usize| n as f64 / total * 600.0;
    let _ = write!(
        h,
        "<h2>Cached and executed</h2>\n<p id=\"cached\">{cached} cached, {executed} executed, {other} neither \
(skipped, cancelled before starting, or mapped).</p>\n\
<svg width=\"600\" height=\"16\" role=\"img\" aria-label=\"cached and executed\">\
<rect x=\"0\" y=\"0\" width=\"{:.1}\" height=\"16\" class=\"used\"><title>{cached} cached</title></rect>\
<rect x=\"{:.1}\" y=\"0\" width=\"{:.1}\" height=\"16\" class=\"ok\"><title>{executed} executed</title></rect>\
<rect x=\"{:.1}\" y=\"0\" width=\"{:.1}\" height=\"16\" class=\"mem\"><title>{other} neither</title></rect></svg>\n",
        w(cached),
        w(cached),
        w(executed),
        w(cached) + w(executed),
        w(other),
    );
}

fn timeline(h: &mut String, r: &RunReport) {
    let mut bars: Vec<Bar<'_>> = Vec::new();
    for t in &r.tasks {
        for a in &t.earlier_attempts {
            bars.push(Bar {
                id: &t.id,
                worker: a.worker,
                start_us: a.start_us,
                duration_us: a.duration_us,
                outcome: &a.outcome,
            });
        }
        if let (Some(worker), Some(start_us), Some(duration_us)) = (t.worker, t.start_us, t.duration_us) {
            let outcome = t.error.as_ref().map_or("ok", |e| e.kind.as_str());
            bars.push(Bar { id: &t.id, worker, start_us, duration_us, outcome });
        }
    }
    let mut workers: Vec<u32> = bars.iter().map(|b| b.worker).collect();
    workers.sort_unstable();
    workers.dedup();
    let end = bars.iter().map(|b| b.start_us + b.duration_us).max().unwrap_or(0).max(1);
    let n = bars.len();
    h.push_str("<h2>Timeline</h2>\n");
    if n == 0 {
        h.push_str("<p id=\"timeline-note\" class=\"note\">No task ran.</p>\n");
        return;
    }
    if n > MAX_BARS {
        bars.sort_unstable_by(|a, b| b.duration_us.cmp(&a.duration_us).then(a.start_us.cmp(&b.start_us)));
        bars.truncate(MAX_BARS);
        let _ = writeln!(
            h,
            "<p id=\"timeline-note\" class=\"note\">{n} attempts on {} workers; showing the {MAX_BARS} longest.</p>",
            workers.len()
        );
    } else {
        let _ = writeln!(h, "<p id=\"timeline-note\" class=\"note\">{n} attempts on {} workers.</p>", workers.len());
    }
    const LABEL: f64 = 90.0;
    const WIDTH: f64 = 1000.0;
    const ROW: usize = 18;
    let height = workers.len() * ROW + 20;
    let _ = writeln!(
        h,
        "<svg id=\"timeline\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"timeline\">",
        LABEL + WIDTH + 10.0
    );
    let row_of: BTreeMap<u32, usize> = workers.iter().enumerate().map(|(i, w)| (*w, i)).collect();
    let mut by_row: Vec<Vec<&Bar<'_>>> = vec![Vec::new(); workers.len()];
    for b in &bars {
        by_row[row_of[&b.worker]].push(b);
    }
    let scale = WIDTH / end as f64;
    for (i, (w, row)) in workers.iter().zip(&by_row).enumerate() {
        let y = i * ROW;
        let _ = write!(h, "<g class=\"lane\" data-worker=\"{w}\"><text x=\"0\" y=\"{}\">worker {w}</text>", y + 13);
        for b in row {
            let x = LABEL + b.start_us as f64 * scale;
            let bw = (b.duration_us as f64 * scale).max(0.5);
            let class = if b.outcome == "ok" { "bar ok" } else { "bar fail" };
            let _ = write!(
                h,
                "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{}\" width=\"{bw:.1}\" height=\"{}\"><title>{} {} ({})</title></rect>",
                y + 2,
                ROW - 4,
                esc(b.id),
                dur(b.duration_us),
                esc(b.outcome)
            );
        }
        h.push_str("</g>\n");
    }
    let _ = writeln!(
        h,
        "<text x=\"{LABEL}\" y=\"{}\">0</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n</svg>",
        workers.len() * ROW + 14,
        LABEL + WIDTH,
        workers.len() * ROW + 14,
        dur(end)
    );
}

/// Tasks that ran, grouped by family, families ordered by total time (largest first).
fn families(r: &RunReport) -> Vec<(String, Vec<&TaskEntry>)> {
    let mut m: BTreeMap<String, Vec<&TaskEntry>> = BTreeMap::new();
    for t in &r.tasks {
        m.entry(family(&t.id)).or_default().push(t);
    }
    let mut v: Vec<(String, Vec<&TaskEntry>)> = m.into_iter().collect();
    let total = |ts: &[&TaskEntry]| ts.iter().map(|t| t.duration_us.unwrap_or(0)).sum::<u64>();
    v.sort_by(|a, b| total(&b.1).cmp(&total(&a.1)).then(a.0.cmp(&b.0)));
    v
}

fn histograms(h: &mut String, r: &RunReport) {
    h.push_str("<h2>Durations by task family</h2>\n");
    let fams: Vec<(String, Vec<u64>)> = families(r)
        .into_iter()
        .map(|(f, ts)| (f, ts.iter().filter_map(|t| t.duration_us).collect::<Vec<u64>>()))
        .filter(|(_, d)| !d.is_empty())
        .collect();
    if fams.is_empty() {
        h.push_str("<p class=\"note\">No task ran.</p>\n");
        return;
    }
    for (f, mut d) in fams.iter().take(MAX_FAMILIES).map(|(f, d)| (f, d.clone())) {
        d.sort_unstable();
        let (lo, hi) = (d[0], d[d.len() - 1]);
        let median = d[d.len() / 2];
        let buckets = if hi == lo { 1 } else { BUCKETS };
        let width = (hi - lo) as f64 / buckets as f64;
        let mut counts = vec![0usize; buckets];
        for &x in &d {
            let b = if width == 0.0 { 0 } else { (((x - lo) as f64 / width) as usize).min(buckets - 1) };
            counts[b] += 1;
        }
        let most = counts.iter().copied().max().unwrap_or(1).max(1);
        let _ = write!(
            h,
            "<div class=\"family\"><h3><code>{}</code></h3><p class=\"note\">{} ran; min {}, median {}, max {}</p>\
<svg class=\"hist\" width=\"420\" height=\"80\" role=\"img\" aria-label=\"durations\">",
            esc(f),
            d.len(),
            dur(lo),
            dur(median),
            dur(hi)
        );
        let bw = 400.0 / buckets as f64;
        for (i, c) in counts.iter().enumerate() {
            let bh = *c as f64 / most as f64 * 60.0;
            let from = lo as f64 + width * i as f64;
            let _ = write!(
                h,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\"><title>{c} tasks from {}</title></rect>",
                i as f64 * bw,
                64.0 - bh,
                (bw - 1.0).max(0.5),
                dur(from as u64)
            );
        }
        let _ = writeln!(
            h,
            "<text x=\"0\" y=\"78\">{}</text><text x=\"400\" y=\"78\" text-anchor=\"end\">{}</text></svg></div>",
            dur(lo),
            dur(hi)
        );
    }
    if fams.len() > MAX_FAMILIES {
        let _ = writeln!(h, "<p class=\"note\">{} more families not shown.</p>", fams.len() - MAX_FAMILIES);
    }
}

fn memory(h: &mut String, r: &RunReport) {
    h.push_str("<h2>Peak memory against the request</h2>\n");
    let rows: Vec<(String, usize, u64, u64)> = families(r)
        .into_iter()
        .filter_map(|(f, ts)| {
            let measured: Vec<&&TaskEntry> = ts.iter().filter(|t| t.peak_memory.is_some()).collect();
            let peak = measured.iter().filter_map(|t| t.peak_memory).max()?;
            let req = measured.iter().filter_map(|t| t.requested_memory).max()?;
            Some((f, measured.len(), req, peak))
        })
        .collect();
    if rows.is_empty() {
        h.push_str("<p class=\"note\">No task measured its memory.</p>\n");
        return;
    }
    h.push_str(
        "<p class=\"note\">One row per task family (<code>count[*]</code> for <code>count[0]</code>, \
<code>count[1]</code>, ...): the largest request and the largest peak of its wasm memory.</p>\n\
<table id=\"memory\"><tr><th>family</th><th>tasks</th><th>requested</th><th>peak</th><th></th><th>hint</th></tr>\n",
    );
    for (f, n, req, peak) in rows.iter().take(MAX_FAMILIES) {
        let frac = if *req == 0 { 1.0 } else { (*peak as f64 / *req as f64).min(1.0) };
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td class=\"n\">{n}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
<td><svg width=\"120\" height=\"10\"><rect class=\"mem\" width=\"120\" height=\"10\"/>\
<rect class=\"used\" width=\"{:.1}\" height=\"10\"/></svg></td><td>{}</td></tr>",
            esc(f),
            spaced_size(*req),
            spaced_size(*peak),
            frac * 120.0,
            memory_hint(*req, *peak)
        );
    }
    h.push_str("</table>\n");
    if rows.len() > MAX_FAMILIES {
        let _ = writeln!(h, "<p class=\"note\">{} more families not shown.</p>", rows.len() - MAX_FAMILIES);
    }
}

fn slowest(h: &mut String, r: &RunReport) {
    let mut v: Vec<&TaskEntry> =
        r.tasks.iter().filter(|t| t.state == "succeeded" && !t.cached && t.duration_us.is_some()).collect();
    v.sort_by(|a, b| b.duration_us.cmp(&a.duration_us).then(a.id.cmp(&b.id)));
    v.truncate(SLOWEST);
    let _ = writeln!(h, "<h2>The {SLOWEST} slowest tasks</h2>");
    if v.is_empty() {
        h.push_str("<p class=\"note\">No task ran to success.</p>\n");
        return;
    }
    h.push_str("<table id=\"slowest\"><tr><th>task</th><th>duration</th><th>worker</th></tr>\n");
    for t in v {
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&t.id),
            dur(t.duration_us.unwrap_or(0)),
            t.worker.map(|w| w.to_string()).unwrap_or_default()
        );
    }
    h.push_str("</table>\n");
}

fn failures(h: &mut String, r: &RunReport) {
    let failed: Vec<&TaskEntry> = r.tasks.iter().filter(|t| t.state == "failed").collect();
    h.push_str("<h2>Failures</h2>\n");
    if failed.is_empty() {
        h.push_str("<p id=\"failures-none\" class=\"note\">No task failed.</p>\n");
        return;
    }
    for t in failed.iter().take(MAX_FAILURES) {
        let (kind, message) = match &t.error {
            Some(e) => (e.kind.as_str(), e.message.as_str()),
            None => ("", ""),
        };
        let _ = write!(
            h,
            "<div class=\"failure\"><p><code>{}</code> failed after {} attempt{} ({}): {}</p>",
            esc(&t.id),
            t.attempts,
            if t.attempts == 1 { "" } else { "s" },
            esc(kind),
            esc(message)
        );
        match t.log.as_deref().and_then(|p| log_tail(Path::new(p), LOG_TAIL_LINES)) {
            Some(tail) if !tail.is_empty() => {
                let _ = write!(h, "<p class=\"note\">last lines of its log:</p><pre>{}</pre>", esc(&tail));
            }
            _ => h.push_str("<p class=\"note\">no log</p>"),
        }
        h.push_str("</div>\n");
    }
    if failed.len() > MAX_FAILURES {
        let _ = writeln!(h, "<p class=\"note\">{} more failures not shown.</p>", failed.len() - MAX_FAILURES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_sizes() {
        assert_eq!(family("count[3]"), "count[*]");
        assert_eq!(family("count[2024-feb]"), "count[*]");
        assert_eq!(family("split"), "split");
        assert_eq!(spaced_size(512 << 20), "512 MiB");
        assert_eq!(memory_hint(512 << 20, 31 << 20), "requested 512 MiB, used at most 31 MiB");
        assert_eq!(esc("<b a=\"x\">&'\u{1b}"), "&lt;b a=&quot;x&quot;&gt;&amp;&#39;\\u{1b}");
        assert_eq!(esc("a\u{202e}b\n\tc\u{85}"), "a\\u{202e}b\n\tc\\u{85}");
        assert_eq!(esc("see https://x.org/a"), "see https:&#47;&#47;x.org/a");
    }

    /// A report of `n` tasks in `n / 100` families on 8 workers.
    fn big(n: usize) -> RunReport {
        let tasks = (0..n)
            .map(|i| TaskEntry {
                id: format!("f{}[{}]", i % 100, i),
                state: if i % 1000 == 7 { "failed".into() } else { "succeeded".into() },
                attempts: 1,
                cached: i % 10 == 0,
                worker: Some((i % 8) as u32),
                start_us: Some(i as u64 * 10),
                duration_us: Some(50 + (i as u64 * 7919) % 1000),
                earlier_attempts: vec![],
                requested_memory: Some(256 << 20),
                peak_memory: Some(((i % 50) as u64 + 1) << 16),
                error: (i % 1000 == 7)
                    .then(|| ErrorEntry { kind: "error".into(), message: "bad <input>, see https://x.org".into() }),
                log: None,
            })
            .collect();
        RunReport {
            pipeline: "big".into(),
            status: "failed".into(),
            executor: "threads".into(),
            workers: 8,
            wall_ms: n as f64 / 100.0,
            counts: Counts { total: n as u64, succeeded: n as u64, failed: 0, skipped: 0, cancelled: 0, cached: 0 },
            tasks,
        }
    }

    #[test]
    fn a_100k_task_report_stays_small_and_fast() {
        let r = big(100_000);
        let t = std::time::Instant::now();
        let page = render(&r);
        let took = t.elapsed();
        assert!(page.len() < 1_000_000, "{} bytes", page.len());
        assert!(took < Duration::from_secs(3), "{took:?}");
        assert_eq!(page.matches("class=\"bar ").count(), MAX_BARS);
        assert_eq!(page.matches("class=\"lane\"").count(), 8);
        assert!(page.contains("100000 attempts on 8 workers; showing the 2000 longest."));
        assert!(page.contains("50 more families not shown."));
        assert!(page.contains("bad &lt;input&gt;, see https:&#47;&#47;x.org"));
        assert!(!page.contains("http://") && !page.contains("https://"));
    }
}
