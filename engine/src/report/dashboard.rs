//! The live dashboard (`engine run --dashboard [ADDR]`): one self-contained
//! HTML page (`dashboard.html`, embedded in the binary: inline CSS and
//! script, no URL outside the page's own server) served over plain HTTP/1.1
//! by a small `std::net` server, and kept up to date over server-sent events.
//!
//! Why no HTTP crate: the server answers four GET paths to a handful of
//! local clients; a thread per connection (at most [`MAX_CONNECTIONS`]) and
//! `TcpListener` do that in a page of code, where an async stack would add
//! minutes to every build.
//!
//! The engine side is an [`Observer`] of the same event stream as
//! `--events` ([`DashboardObserver`]): it folds each event into counters of
//! fixed size (states, per-family progress, resources in use, the last bars
//! of each worker, the first failures), and at most every
//! [`PUBLISH_EVERY`] (and at the end) serializes one JSON snapshot that
//! every client is sent. The page therefore never holds more than a few
//! thousand elements, however many tasks the run has. The snapshot's shape
//! is the page's business (it is not a stable format: `--events` is).
//!
//! Paths: `/` the page (with the current snapshot inside, so it renders
//! without waiting for the stream), `/events` the stream
//! (`text/event-stream`, one `data:` line of snapshot JSON per update),
//! `/state` the current snapshot. Bound to a loopback address, the server
//! answers only requests whose `Host` is an IP address or `localhost`, so a
//! web page cannot reach it through a DNS name rebound to 127.0.0.1.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use hashbrown::HashTable;
use serde::Serialize;

use super::events::Res;
use crate::exec::driver::{Event, Observer};
use crate::plan::{Plan, Resources, TaskId};
use crate::sched::{Counts, FailureDecision};

/// The page, with `__STATE__` where the current snapshot goes.
const PAGE: &str = include_str!("dashboard.html");

/// The default address of `--dashboard`.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8787";

/// The longest time between two snapshots while events come.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// How long stopping the server waits for connected clients to be sent
/// the final state.
pub const CLOSE_GRACE: Duration = Duration::from_millis(250);

/// Clients served at once; more get `503`.
pub const MAX_CONNECTIONS: usize = 32;

/// Failures the page lists (the rest are counted).
pub const MAX_FAILURES: usize = 50;

/// Task families the page lists (the rest are counted).
pub const MAX_FAMILIES: usize = 100;

/// Edges of the family graph the page draws (the rest are counted).
pub const MAX_EDGES: usize = 1000;

/// Bars of the task stream kept in all, shared between the workers.
pub const MAX_BARS: usize = 2000;

/// The Content-Security-Policy of the page: nothing may be loaded or
/// connected to but the page's own server.
pub const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                       connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'";

/// A running dashboard server. Dropping it stops serving.
pub struct Dashboard {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

struct Shared {
    published: Mutex<Published>,
    changed: Condvar,
    closing: AtomicBool,
    connections: AtomicUsize,
    loopback: bool,
}

struct Published {
    version: u64,
    json: Arc<str>,
}

impl Dashboard {
    /// Bind `addr` (`HOST:PORT`; port 0 picks a free port) and serve the
    /// page from a background thread.
    pub fn bind(addr: &str) -> std::io::Result<Dashboard> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        let listener = TcpListener::bind(&addrs[..])?;
        let addr = listener.local_addr()?;
        let empty = serde_json::json!({ "v": 1, "status": "starting" }).to_string();
        let shared = Arc::new(Shared {
            published: Mutex::new(Published { version: 0, json: empty.into() }),
            changed: Condvar::new(),
            closing: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            loopback: addr.ip().is_loopback(),
        });
        let s = shared.clone();
        std::thread::Builder::new().name("engine-dashboard".into()).spawn(move || accept(listener, s))?;
        Ok(Dashboard { shared, addr })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether it listens on a loopback address only.
    pub fn is_loopback(&self) -> bool {
        self.shared.loopback
    }

    /// The observer that feeds it; `executor` names the executor on the page.
    pub fn observer(&self, executor: &'static str) -> DashboardObserver {
        DashboardObserver::new(self.shared.clone(), executor)
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        // Wake the accept loop, which then sees `closing`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        // Let connected clients receive the final state before the process
        // may exit (a client that does not read is not waited for long).
        let until = Instant::now() + CLOSE_GRACE;
        while self.shared.connections.load(Ordering::SeqCst) > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn accept(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.closing.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut stream) = stream else { continue };
        if shared.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
            let _ = respond(&mut stream, "503 Service Unavailable", "text/plain", b"too many connections\n");
            continue;
        }
        let s = shared.clone();
        let spawned = std::thread::Builder::new().name("engine-dashboard-client".into()).spawn(move || {
            let _ = serve(&mut stream, &s);
            s.connections.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// The most bytes of request head read, its final empty line included.
pub const MAX_HEAD: usize = 8192;

/// The request line and `Host` of one request (at most [`MAX_HEAD`] bytes of
/// head); `None` when the head does not end within them.
#[allow(clippy::type_complexity)]
fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<(String, String, Option<String>)>> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let room = MAX_HEAD - head.len();
        if room == 0 {
            return Ok(None);
        }
        let n = stream.read(&mut buf[..room.min(1024)])?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let host = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.trim().to_string());
    Ok(Some((method, path, host)))
}

/// Whether a `Host` header names this machine by address or as `localhost`.
pub fn host_is_local_name(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

fn respond(stream: &mut TcpStream, status: &str, ctype: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
         Content-Security-Policy: {CSP}\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

fn serve(stream: &mut TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let Some((method, path, host)) = read_head(stream)? else {
        let r = respond(stream, "431 Request Header Fields Too Large", "text/plain", b"request head over 8 KiB\n");
        // Read what the client still sends (briefly), so that closing does
        // not reset the connection before it reads the answer.
        let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
        let _ = std::io::copy(&mut stream.take(1 << 20), &mut std::io::sink());
        return r;
    };
    if shared.loopback && !host.as_deref().is_some_and(host_is_local_name) {
        return respond(
            stream,
            "403 Forbidden",
            "text/plain",
            b"the dashboard answers only to localhost or an IP address\n",
        );
    }
    if method != "GET" {
        return respond(stream, "405 Method Not Allowed", "text/plain", b"only GET\n");
    }
    let current = || shared.published.lock().unwrap_or_else(|e| e.into_inner()).json.clone();
    match path.split('?').next().unwrap_or("") {
        "/" | "/index.html" => {
            // `<` never appears outside a JSON string, where `\u003c` means the same.
            let page = PAGE.replace("__STATE__", &current().replace('<', "\\u003c"));
            respond(stream, "200 OK", "text/html; charset=utf-8", page.as_bytes())
        }
        "/state" => respond(stream, "200 OK", "application/json", current().as_bytes()),
        "/events" => stream_events(stream, shared),
        "/favicon.ico" => respond(stream, "204 No Content", "text/plain", b""),
        _ => respond(stream, "404 Not Found", "text/plain", b"not found\n"),
    }
}

/// The server-sent event stream: the current snapshot, then each new one;
/// a comment line every 15 s keeps idle proxies from closing it.
fn stream_events(stream: &mut TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
          X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\nretry: 2000\n\n",
    )?;
    let mut sent = u64::MAX;
    loop {
        let (json, version, closing) = {
            let mut p = shared.published.lock().unwrap_or_else(|e| e.into_inner());
            while p.version == sent && !shared.closing.load(Ordering::SeqCst) {
                let (g, timeout) =
                    shared.changed.wait_timeout(p, Duration::from_secs(15)).unwrap_or_else(|e| e.into_inner());
                p = g;
                if timeout.timed_out() && p.version == sent {
                    break;
                }
            }
            (p.json.clone(), p.version, shared.closing.load(Ordering::SeqCst))
        };
        if version == sent {
            if closing {
                return Ok(());
            }
            stream.write_all(b": keep-alive\n\n")?;
        } else {
            // Closing or not, a client gets the last state (the run's final one).
            stream.write_all(b"data: ")?;
            stream.write_all(json.as_bytes())?;
            stream.write_all(b"\n\n")?;
            sent = version;
        }
        stream.flush()?;
        if closing {
            return Ok(());
        }
    }
}

/// Per family (a task id without its `[key]`: `count[*]`), named by its
/// first task and the length of its key (`count[`): a run whose every task is
/// its own family allocates nothing per family. A family first met as the
/// dependency of a task mapped at run time (`count`, whose children will be
/// `count[0]`, ...) is named by that task with `template` set: its key is
/// the id and a `[`.
struct Family {
    key: FamilyKey,
    total: u32,
    succeeded: u32,
    cached: u32,
    failed: u32,
    running: u32,
}

/// What names a family: its first task, the length of its key, whether
/// it is a template's (see [`Family`]).
#[derive(Clone, Copy)]
struct FamilyKey {
    first: TaskId,
    key_len: u32,
    template: bool,
}

/// An entry of the family lookup table: the key's hash, the family, and
/// its key (families past [`MAX_FAMILIES`] have no [`Family`] record).
struct Keyed {
    hash: u64,
    id: u32,
    key: FamilyKey,
}

#[derive(Clone, Copy)]
struct Bar {
    task: TaskId,
    start_us: u64,
    end_us: u64,
    ok: bool,
}

#[derive(Default)]
struct Lane {
    bars: VecDeque<Bar>,
    /// Tasks handed to this worker and not ended, with when.
    running: Vec<(TaskId, u64)>,
}

struct FailureRow {
    task: TaskId,
    attempt: u32,
    kind: &'static str,
    message: String,
    log_tail: String,
}

/// The observer that feeds a [`Dashboard`] (see the module comment).
pub struct DashboardObserver {
    shared: Arc<Shared>,
    executor: &'static str,
    start: Instant,
    status: &'static str,
    workers: usize,
    /// The first [`MAX_FAMILIES`] families (the ones the page shows), and
    /// how many there are in all.
    families: Vec<Family>,
    family_count: u32,
    /// Families whose key has a `[`, by the hash of their key (stored, so
    /// growing the table re-hashes nothing). A whole id is its own family
    /// and needs no lookup.
    family_index: HashTable<Keyed>,
    /// Per task: its family, and whether it is running.
    family_of: Vec<u32>,
    running: Vec<bool>,
    /// The family graph: `[a, b]` when a task of family `b` depends on one
    /// of family `a` (both among the first [`MAX_FAMILIES`], `a != b`),
    /// sorted, at most [`MAX_EDGES`]; and how many more there are.
    edges: Vec<[u32; 2]>,
    edge_set: rustc_hash::FxHashSet<[u32; 2]>,
    edges_more: usize,
    in_use: Resources,
    capacity: Resources,
    lanes: Vec<Lane>,
    failures: Vec<FailureRow>,
    failures_total: usize,
    counts: Counts,
    cached: usize,
    last_publish: Option<Instant>,
    /// The same, in microseconds since the run's start.
    last_publish_us: u64,
    /// Events since the clock was last read for [`PUBLISH_EVERY`].
    unclocked: u32,
}

const NO_FAMILY: u32 = u32::MAX;

/// `in_use -= req`, never below zero.
fn release(in_use: &mut Resources, req: &Resources) {
    in_use.cpu_milli = in_use.cpu_milli.saturating_sub(req.cpu_milli);
    in_use.memory = in_use.memory.saturating_sub(req.memory);
    in_use.gpu = in_use.gpu.saturating_sub(req.gpu);
    for (k, v) in &req.custom {
        if let Some(a) = in_use.custom.get_mut(k) {
            *a = a.saturating_sub(*v);
        }
    }
}

/// Whether `fam` is the family keyed `key` (see [`Family`]).
fn family_key_is(plan: &Plan, fam: &FamilyKey, key: &str) -> bool {
    let id = plan.tasks[fam.first as usize].id.as_str();
    match fam.template {
        true => key.len() == id.len() + 1 && key.starts_with(id) && key.ends_with('['),
        false => id.get(..fam.key_len as usize) == Some(key),
    }
}

impl DashboardObserver {
    fn new(shared: Arc<Shared>, executor: &'static str) -> Self {
        DashboardObserver {
            shared,
            executor,
            start: Instant::now(),
            status: "starting",
            workers: 0,
            families: Vec::new(),
            family_count: 0,
            family_index: HashTable::new(),
            family_of: Vec::new(),
            running: Vec::new(),
            edges: Vec::new(),
            edge_set: Default::default(),
            edges_more: 0,
            in_use: Resources::default(),
            capacity: Resources::default(),
            lanes: Vec::new(),
            failures: Vec::new(),
            failures_total: 0,
            counts: Counts::default(),
            cached: 0,
            last_publish: None,
            last_publish_us: 0,
            unclocked: 0,
        }
    }

    /// Give every task of the plan not seen yet its family (templates,
    /// which never run, have none).
    fn add_tasks(&mut self, plan: &Plan) {
        let first_new = self.family_of.len();
        self.family_of.reserve(plan.tasks.len().saturating_sub(first_new));
        for t in first_new..plan.tasks.len() {
            let spec = &plan.tasks[t];
            if spec.map.is_some() {
                self.family_of.push(NO_FAMILY);
                continue;
            }
            // The key: the id up to its `[` (`count[`), or the whole id.
            let key = match spec.id.find('[') {
                Some(i) if spec.id.ends_with(']') => &spec.id[..=i],
                _ => spec.id.as_str(),
            };
            // A whole id without `[` is its own family: ids are unique and
            // every other key has a `[`, so it needs no lookup (a run whose
            // every task is its own family hashes nothing).
            let f = match key.contains('[') {
                true => self.family_by_key(plan, key, t as TaskId, false),
                false => self.push_family(t as TaskId, key.len(), false),
            };
            if let Some(fam) = self.families.get_mut(f as usize) {
                fam.total += 1;
            }
            self.family_of.push(f);
        }
        // The family graph, once every new task has its family (a task may
        // depend on one with a greater id).
        for t in first_new..plan.tasks.len() {
            let f = self.graph_family(plan, t as TaskId);
            if f as usize >= MAX_FAMILIES {
                continue;
            }
            let mut last = NO_FAMILY;
            for &d in &plan.tasks[t].deps {
                let from = self.graph_family(plan, d);
                if from == last || from == f || from as usize >= MAX_FAMILIES {
                    continue;
                }
                last = from;
                if self.edge_set.insert([from, f]) {
                    if self.edges.len() < MAX_EDGES {
                        self.edges.push([from, f]);
                    } else {
                        self.edges_more += 1;
                    }
                }
            }
        }
        self.edges.sort_unstable();
        self.running.resize(plan.tasks.len(), false);
    }

    /// The family of task `t` in the graph: its own, or for a task mapped at
    /// run time, the family its children will have.
    fn graph_family(&mut self, plan: &Plan, t: TaskId) -> u32 {
        match self.family_of.get(t as usize) {
            Some(&NO_FAMILY) if plan.tasks[t as usize].map.is_some() => {
                let key = format!("{}[", plan.tasks[t as usize].id);
                self.family_by_key(plan, &key, t, true)
            }
            Some(&f) => f,
            None => NO_FAMILY,
        }
    }

    /// The family whose key is `key` (`count[`, or a whole id), made with
    /// `t` as its first task when there is none yet.
    fn family_by_key(&mut self, plan: &Plan, key: &str, t: TaskId, template: bool) -> u32 {
        let hash = rustc_hash::FxBuildHasher.hash_one(key);
        if let Some(k) = self.family_index.find(hash, |k| k.hash == hash && family_key_is(plan, &k.key, key)) {
            return k.id;
        }
        let f = self.push_family(t, key.len(), template);
        let fk = FamilyKey { first: t, key_len: key.len() as u32, template };
        self.family_index.insert_unique(hash, Keyed { hash, id: f, key: fk }, |k| k.hash);
        f
    }

    /// A new family, with `t` as its first task and a key `key_len` long
    /// (a record only for the ones the page shows).
    fn push_family(&mut self, t: TaskId, key_len: usize, template: bool) -> u32 {
        let f = self.family_count;
        self.family_count += 1;
        if self.families.len() < MAX_FAMILIES {
            self.families.push(Family {
                key: FamilyKey { first: t, key_len: key_len as u32, template },
                total: 0,
                succeeded: 0,
                cached: 0,
                failed: 0,
                running: 0,
            });
        }
        f
    }

    /// Task `t`'s family, when it is one the page shows (the first
    /// [`MAX_FAMILIES`]): the others' counters are never read, and a run
    /// whose every task is its own family would otherwise touch a
    /// family record far from the last one at every event.
    fn family(&mut self, t: TaskId) -> Option<&mut Family> {
        let f = *self.family_of.get(t as usize)?;
        if f as usize >= MAX_FAMILIES {
            return None;
        }
        self.families.get_mut(f as usize)
    }

    fn lane(&mut self, w: u32) -> &mut Lane {
        if self.lanes.len() <= w as usize {
            self.lanes.resize_with(w as usize + 1, Lane::default);
        }
        &mut self.lanes[w as usize]
    }

    fn started(&mut self, plan: &Plan, t: TaskId, worker: u32, now_us: u64) {
        // Handed out again after its worker died before starting it.
        self.stopped(plan, t, None);
        self.running[t as usize] = true;
        self.in_use.give(&plan.tasks[t as usize].resources);
        if let Some(f) = self.family(t) {
            f.running += 1;
        }
        self.lane(worker).running.push((t, now_us));
    }

    /// Task `t` is no longer running (ended, failed, back to ready).
    fn stopped(&mut self, plan: &Plan, t: TaskId, worker: Option<u32>) {
        if !std::mem::replace(&mut self.running[t as usize], false) {
            return;
        }
        release(&mut self.in_use, &plan.tasks[t as usize].resources);
        if let Some(f) = self.family(t) {
            f.running = f.running.saturating_sub(1);
        }
        // A task runs in one lane; it is usually the oldest there, and
        // `worker` (when the event names it) is that lane.
        let n = self.lanes.len();
        let first = worker.map_or(0, |w| w as usize).min(n.saturating_sub(1));
        for k in 0..n {
            let l = &mut self.lanes[(first + k) % n];
            if let Some(i) = l.running.iter().position(|&(r, _)| r == t) {
                l.running.remove(i);
                break;
            }
        }
    }

    fn bar(&mut self, worker: u32, bar: Bar) {
        let cap = (MAX_BARS / self.workers.max(1)).max(20);
        let lane = self.lane(worker);
        if lane.bars.len() >= cap {
            lane.bars.pop_front();
        }
        lane.bars.push_back(bar);
    }

    fn fold(&mut self, plan: &Plan, ev: &Event<'_>) {
        match *ev {
            Event::Begin { workers, run_start } => {
                self.start = run_start;
                self.workers = workers;
                self.status = "running";
                self.capacity = plan.capacity.clone();
                self.add_tasks(plan);
            }
            Event::Expanded { .. } => self.add_tasks(plan),
            Event::Queued { task } => self.stopped(plan, task, None),
            Event::Started { task, worker, at, .. } => self.started(plan, task, worker, at.as_micros() as u64),
            Event::Succeeded { task, metrics: m, .. } => {
                self.stopped(plan, task, Some(m.worker));
                if let Some(f) = self.family(task) {
                    f.succeeded += 1;
                }
                self.bar(m.worker, Bar { task, start_us: m.start_us, end_us: m.end_us, ok: true });
            }
            Event::Cached { task, .. } => {
                self.cached += 1;
                if let Some(f) = self.family(task) {
                    f.cached += 1;
                }
            }
            Event::Failed { task, attempt, failure, decision, log_tail, metrics } => {
                self.stopped(plan, task, metrics.map(|m| m.worker));
                if let Some(m) = metrics {
                    self.bar(m.worker, Bar { task, start_us: m.start_us, end_us: m.end_us, ok: false });
                }
                if let FailureDecision::Failed { .. } = decision {
                    if let Some(f) = self.family(task) {
                        f.failed += 1;
                    }
                    self.failures_total += 1;
                    if self.failures.len() < MAX_FAILURES {
                        self.failures.push(FailureRow {
                            task,
                            attempt,
                            kind: failure.kind(),
                            message: failure.to_string(),
                            log_tail: log_tail.to_string(),
                        });
                    }
                }
            }
            Event::Cancelled { task } => self.stopped(plan, task, None),
            Event::Interrupted => self.status = "interrupted",
            Event::End { cached, interrupted } => {
                self.cached = cached;
                self.status = if interrupted {
                    "interrupted"
                } else if self.counts.succeeded == self.counts.total {
                    "succeeded"
                } else {
                    "failed"
                };
            }
            Event::Tick => {}
        }
    }

    fn snapshot(&self, plan: &Plan, now_us: u64) -> String {
        let id = |t: TaskId| plan.tasks[t as usize].id.as_str();
        let fam = |t: TaskId| self.family_of.get(t as usize).copied().unwrap_or(NO_FAMILY);
        let c = &self.counts;
        let snap = Snapshot {
            v: 1,
            pipeline: &plan.name,
            executor: self.executor,
            workers: self.workers,
            status: self.status,
            t_us: now_us,
            counts: SnapCounts {
                total: c.total,
                waiting: c.waiting,
                ready: c.ready,
                running: c.running,
                backoff: c.backoff,
                succeeded: c.succeeded,
                cached: self.cached as u32,
                failed: c.failed,
                skipped: c.skipped,
                cancelled: c.cancelled,
            },
            capacity: Res(&self.capacity),
            in_use: Res(&self.in_use),
            families: self
                .families
                .iter()
                .take(MAX_FAMILIES)
                .map(|f| FamilyView {
                    name: match f.key.template {
                        true => format!("{}[*]", id(f.key.first)),
                        false => super::html::family(id(f.key.first)),
                    },
                    total: f.total,
                    succeeded: f.succeeded,
                    cached: f.cached,
                    failed: f.failed,
                    running: f.running,
                })
                .collect(),
            families_more: (self.family_count as usize).saturating_sub(MAX_FAMILIES),
            edges: &self.edges,
            edges_more: self.edges_more,
            lanes: self
                .lanes
                .iter()
                .enumerate()
                .map(|(w, l)| LaneView {
                    worker: w as u32,
                    bars: l
                        .bars
                        .iter()
                        .map(|b| BarView {
                            task: id(b.task),
                            family: fam(b.task),
                            start_us: b.start_us,
                            end_us: b.end_us,
                            ok: b.ok,
                        })
                        .collect(),
                    running: l
                        .running
                        .iter()
                        .map(|&(t, since)| RunView { task: id(t), family: fam(t), since_us: since })
                        .collect(),
                })
                .collect(),
            failures: self
                .failures
                .iter()
                .map(|f| FailureView {
                    task: id(f.task),
                    attempt: f.attempt,
                    kind: f.kind,
                    message: &f.message,
                    log_tail: &f.log_tail,
                })
                .collect(),
            failures_more: self.failures_total - self.failures.len(),
        };
        serde_json::to_string(&snap).unwrap_or_default()
    }

    fn publish(&mut self, plan: &Plan, now: Instant) {
        let now_us = now.saturating_duration_since(self.start).as_micros() as u64;
        let json: Arc<str> = self.snapshot(plan, now_us).into();
        let mut p = self.shared.published.lock().unwrap_or_else(|e| e.into_inner());
        p.version += 1;
        p.json = json;
        drop(p);
        self.shared.changed.notify_all();
        self.last_publish = Some(now);
        self.last_publish_us = now_us;
    }
}

impl Observer for DashboardObserver {
    fn event(&mut self, plan: &Plan, ev: Event<'_>, counts: &Counts) {
        self.counts = *counts;
        // Events come under the driver's lock, so each costs every worker:
        // most carry their time since the run's start, and the clock is read
        // only when one of those times says a snapshot may be due, at a tick,
        // and every CLOCK_EVERY events.
        const CLOCK_EVERY: u32 = 64;
        let forced = matches!(ev, Event::End { .. } | Event::Begin { .. });
        let carried = match ev {
            Event::Started { at, .. } => Some(at.as_micros() as u64),
            Event::Succeeded { metrics, .. } | Event::Failed { metrics: Some(metrics), .. } => Some(metrics.end_us),
            _ => None,
        };
        self.fold(plan, &ev);
        let every = PUBLISH_EVERY.as_micros() as u64;
        self.unclocked += 1;
        let maybe_due = carried.is_some_and(|t| t.saturating_sub(self.last_publish_us) >= every)
            || self.unclocked >= CLOCK_EVERY
            || matches!(ev, Event::Tick);
        if forced || maybe_due || self.last_publish.is_none() {
            self.unclocked = 0;
            let now = Instant::now();
            let due = self.last_publish.is_none_or(|at| now.duration_since(at) >= PUBLISH_EVERY);
            if forced || due {
                self.publish(plan, now);
            }
        }
    }
}

#[derive(Serialize)]
struct Snapshot<'a> {
    v: u32,
    pipeline: &'a str,
    executor: &'a str,
    workers: usize,
    /// `starting`, `running`, `succeeded`, `failed` or `interrupted`.
    status: &'a str,
    t_us: u64,
    counts: SnapCounts,
    capacity: Res<'a>,
    in_use: Res<'a>,
    families: Vec<FamilyView>,
    families_more: usize,
    /// `[from, to]` indexes into `families`.
    edges: &'a [[u32; 2]],
    edges_more: usize,
    lanes: Vec<LaneView<'a>>,
    failures: Vec<FailureView<'a>>,
    failures_more: usize,
}

#[derive(Serialize)]
struct SnapCounts {
    total: u32,
    waiting: u32,
    ready: u32,
    running: u32,
    backoff: u32,
    succeeded: u32,
    cached: u32,
    failed: u32,
    skipped: u32,
    cancelled: u32,
}

#[derive(Serialize)]
struct FamilyView {
    name: String,
    total: u32,
    succeeded: u32,
    cached: u32,
    failed: u32,
    running: u32,
}

#[derive(Serialize)]
struct LaneView<'a> {
    worker: u32,
    bars: Vec<BarView<'a>>,
    running: Vec<RunView<'a>>,
}

#[derive(Serialize)]
struct BarView<'a> {
    task: &'a str,
    family: u32,
    start_us: u64,
    end_us: u64,
    ok: bool,
}

#[derive(Serialize)]
struct RunView<'a> {
    task: &'a str,
    family: u32,
    since_us: u64,
}

#[derive(Serialize)]
struct FailureView<'a> {
    task: &'a str,
    attempt: u32,
    kind: &'a str,
    message: &'a str,
    log_tail: &'a str,
}

#[cfg(test)]
mod tests {
    use super::host_is_local_name;

    #[test]
    fn only_addresses_and_localhost_are_local_names() {
        for ok in ["127.0.0.1:8787", "localhost:8787", "LOCALHOST", "[::1]:8787", "10.0.0.2", "[::1]"] {
            assert!(host_is_local_name(ok), "{ok}");
        }
        for bad in ["evil.example:8787", "evil.example", "127.0.0.1.nip.io:8787", ""] {
            assert!(!host_is_local_name(bad), "{bad}");
        }
    }
}
