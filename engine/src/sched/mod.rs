//! The scheduler core: a pure state machine over a [`Plan`]. No wasmtime, no
//! I/O, no clocks — time is an argument, so every transition is deterministic
//! and unit-testable.
//!
//! The core owns the task states, dependency counts, the ready queue and the
//! resource ledger. An executor driver feeds it events (`on_success`,
//! `on_failure`, `tick`, `cancel`) and asks it which tasks to start
//! (`schedule`). See "Dispatch policy" below for the rules.
//!
//! # Dispatch policy
//!
//! * A task becomes ready when all its dependencies have succeeded.
//! * Ready tasks are ordered by `priority` (higher first), then by the length of
//!   the longest path from the task to a sink ("bottom level", longer first, so
//!   the critical path starts early), then by task id (lower first, so the order
//!   is deterministic).
//! * A task starts only when its whole request (cpu, memory, gpu, custom
//!   resources) fits in what is still free; the sum of requests in flight never
//!   exceeds the capacity. When the best ready task does not fit, up to
//!   [`SCAN_LIMIT`] further ready tasks are considered so that small tasks can
//!   fill the gap (bounded backfilling: a big task can be overtaken by smaller
//!   ones, but the scan cost per call stays constant).
//! * A driver may start tasks on a *lane* ([`Core::schedule_lane`]): a worker
//!   that runs the tasks given to it one at a time, in order, while the next
//!   ones wait in its queue (the processes executor keeps a few tasks queued
//!   per worker so that it never idles for a round trip on its pipe). Only one
//!   task of a lane runs at any moment, so the lane holds the elementwise
//!   maximum of its tasks' requests, not their sum: a task joins a lane when
//!   the *increase* of that maximum fits in what is free, and a lane gives back
//!   what its maximum drops by as its tasks end. The ledger therefore still
//!   bounds what runs: the sum over lanes of their maxima (plus the requests
//!   of tasks started without a lane) never exceeds the capacity. A task that
//!   was queued on a lane but never started (its worker died first) goes back
//!   to ready with [`Core::unstart`], as if it had never been scheduled.
//! * A failed attempt whose failure is retryable and whose task has retries
//!   left waits `backoff(attempt)` and becomes ready again; otherwise the task
//!   fails and all its transitive dependents are skipped. Independent branches
//!   run on unless `fail_fast` is set, in which case nothing new starts after
//!   the first permanent failure.
//!
//! Time and memory are linear in tasks plus edges: each edge is visited once
//! when its source finishes (or is skipped).
//!
//! # Dynamic fan-out
//!
//! A mapped task (`map`, [`crate::plan::MapSpec`]) is a *template*: it never
//! runs. When its dependencies (its producer among them) have all succeeded
//! it becomes [`TaskState::Expanding`] and is listed by
//! [`Core::expansions`]; the driver, which can read the producer's
//! outputs, then calls [`Core::expand`] with the number of items (or
//! [`Core::fail_expansion`]). Expansion appends that many *children* after
//! the plan's tasks (ids `n_static..`), each ready at once (its dependencies
//! are the template's, all succeeded), with the template's request, retries
//! and priority. The template then waits for its children as if they were
//! its dependencies: it succeeds, without running, when the last one
//! succeeds (at once for zero items), so the tasks that collect `count[*]`
//! wait on the template alone and see every child's outputs. A child that
//! fails for good skips the template, hence the collectors; its siblings run
//! on. A retried producer expands once, when it finally succeeds.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Duration;

use crate::plan::{Plan, Resources, TaskId};

/// How many ready tasks `schedule` looks past the head when the head does not fit.
pub const SCAN_LIMIT: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Waiting for this many dependencies to succeed.
    Waiting {
        unfinished_deps: u32,
    },
    /// All dependencies done; in the ready queue.
    Ready,
    /// A template (`map`) whose dependencies all succeeded, waiting for the
    /// driver to expand it (counted as waiting).
    Expanding,
    Running,
    /// Failed an attempt; becomes ready again at `at`.
    Backoff {
        at: Duration,
    },
    Succeeded,
    Failed,
    /// Not run because a dependency failed (or was skipped).
    Skipped,
    /// Not run (or interrupted) because the run was cancelled.
    Cancelled,
}

impl TaskState {
    pub fn is_terminal(self) -> bool {
        matches!(self, TaskState::Succeeded | TaskState::Failed | TaskState::Skipped | TaskState::Cancelled)
    }
}

#[derive(Debug, Clone)]
pub struct CoreOptions {
    pub fail_fast: bool,
    /// Delay before the second attempt; doubled for each further attempt.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for CoreOptions {
    fn default() -> Self {
        CoreOptions { fail_fast: false, backoff_base: Duration::from_millis(100), backoff_max: Duration::from_secs(10) }
    }
}

/// How the core should treat a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// A task failure: retried while the task has `retries` left, with backoff.
    Retryable,
    /// Never retried (cancellation, inputs that cannot be resolved).
    Final,
    /// The worker running it died: an infrastructure failure. Retried at once
    /// on another worker, without using the task's own retries, until the task
    /// has taken down [`MAX_WORKER_LOST`] workers in a row.
    WorkerLost,
}

/// How many workers a task may take down before it fails with "worker lost".
pub const MAX_WORKER_LOST: u32 = 3;

/// What the core decided about a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureDecision {
    /// The task will be retried; it becomes ready at this time.
    Retry { at: Duration },
    /// The task failed for good; this many dependents were skipped.
    Failed { skipped: u32 },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u32,
    pub waiting: u32,
    pub ready: u32,
    pub running: u32,
    pub backoff: u32,
    pub succeeded: u32,
    pub failed: u32,
    pub skipped: u32,
    pub cancelled: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ReadyKey {
    priority: i32,
    bottom: u32,
    task: TaskId,
}

impl Ord for ReadyKey {
    fn cmp(&self, o: &Self) -> Ordering {
        self.priority.cmp(&o.priority).then(self.bottom.cmp(&o.bottom)).then(o.task.cmp(&self.task))
    }
}

impl PartialOrd for ReadyKey {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

pub struct Core {
    opts: CoreOptions,
    state: Vec<TaskState>,
    attempts: Vec<u32>,
    /// Attempts that ended with the worker lost (not counted against `retries`).
    lost: Vec<u32>,
    retries: Vec<u32>,
    priority: Vec<i32>,
    bottom: Vec<u32>,
    requests: Vec<Resources>,
    /// Dependents in CSR form: `dependents[dep_start[t]..dep_start[t+1]]`.
    dep_start: Vec<u32>,
    dependents: Vec<TaskId>,
    ready: BinaryHeap<ReadyKey>,
    /// Tasks in backoff (few; scanned linearly).
    backoff: Vec<TaskId>,
    capacity: Resources,
    free: Resources,
    /// The lane each started task is queued on ([`NO_LANE`] when none).
    lane_of: Vec<u32>,
    lanes: Vec<Lane>,
    counts: Counts,
    stopped: bool,
    /// The plan's tasks; expanded children come after them.
    n_static: u32,
    /// Per plan task: whether it is a template (`map`).
    template: Vec<bool>,
    /// Per child (index `t - n_static`): its template.
    parent: Vec<TaskId>,
    /// The children of each expanded template.
    children: std::collections::HashMap<TaskId, std::ops::Range<TaskId>>,
    /// Templates that became [`TaskState::Expanding`] (some may have been
    /// skipped or cancelled since).
    pending: Vec<TaskId>,
    /// Reused by `propagate_success`.
    scratch: Vec<TaskId>,
    /// Tasks that became ready since the driver last asked, when it asked
    /// to be told ([`Core::log_ready`]); `None` costs nothing per task.
    ready_log: Option<Vec<TaskId>>,
}

const NO_LANE: u32 = u32::MAX;

/// A worker that runs its tasks one at a time (see "Dispatch policy").
#[derive(Debug, Clone, Default)]
struct Lane {
    /// Started tasks on this lane that have not ended, in dispatch order.
    tasks: Vec<TaskId>,
    /// The elementwise maximum of their requests: what the lane holds.
    held: Resources,
}

impl Core {
    pub fn new(plan: &Plan, opts: CoreOptions) -> Core {
        let n = plan.tasks.len();
        // Dependents (reverse edges) in CSR form.
        let mut out_deg = vec![0u32; n + 1];
        for t in &plan.tasks {
            for &d in &t.deps {
                out_deg[d as usize] += 1;
            }
        }
        let mut dep_start = vec![0u32; n + 1];
        for i in 0..n {
            dep_start[i + 1] = dep_start[i] + out_deg[i];
        }
        let mut fill = dep_start.clone();
        let mut dependents = vec![0 as TaskId; dep_start[n] as usize];
        for (i, t) in plan.tasks.iter().enumerate() {
            for &d in &t.deps {
                dependents[fill[d as usize] as usize] = i as TaskId;
                fill[d as usize] += 1;
            }
        }

        // Topological order (Kahn), then bottom levels in reverse order.
        let mut indeg: Vec<u32> = plan.tasks.iter().map(|t| t.deps.len() as u32).collect();
        let mut order: Vec<TaskId> = (0..n as TaskId).filter(|&t| indeg[t as usize] == 0).collect();
        let mut head = 0;
        while head < order.len() {
            let t = order[head] as usize;
            head += 1;
            for &s in &dependents[dep_start[t] as usize..dep_start[t + 1] as usize] {
                indeg[s as usize] -= 1;
                if indeg[s as usize] == 0 {
                    order.push(s);
                }
            }
        }
        let mut bottom = vec![1u32; n];
        for &t in order.iter().rev() {
            let t = t as usize;
            let best = dependents[dep_start[t] as usize..dep_start[t + 1] as usize]
                .iter()
                .map(|&s| bottom[s as usize])
                .max()
                .unwrap_or(0);
            bottom[t] = best + 1;
        }

        let mut core = Core {
            opts,
            state: Vec::with_capacity(n),
            attempts: vec![0; n],
            lost: vec![0; n],
            retries: plan.tasks.iter().map(|t| t.retries).collect(),
            priority: plan.tasks.iter().map(|t| t.priority).collect(),
            bottom,
            requests: plan.tasks.iter().map(|t| t.resources.clone()).collect(),
            dep_start,
            dependents,
            ready: BinaryHeap::new(),
            backoff: Vec::new(),
            capacity: plan.capacity.clone(),
            free: plan.capacity.clone(),
            lane_of: vec![NO_LANE; n],
            lanes: Vec::new(),
            counts: Counts { total: n as u32, ..Counts::default() },
            stopped: false,
            n_static: n as u32,
            template: plan.tasks.iter().map(|t| t.map.is_some()).collect(),
            parent: Vec::new(),
            children: Default::default(),
            pending: Vec::new(),
            scratch: Vec::new(),
            ready_log: None,
        };
        for (i, t) in plan.tasks.iter().enumerate() {
            if t.deps.is_empty() && t.map.is_some() {
                core.state.push(TaskState::Expanding);
                core.counts.waiting += 1;
                core.pending.push(i as TaskId);
            } else if t.deps.is_empty() {
                core.state.push(TaskState::Ready);
                core.counts.ready += 1;
                core.push_ready(i as TaskId);
            } else {
                core.state.push(TaskState::Waiting { unfinished_deps: t.deps.len() as u32 });
                core.counts.waiting += 1;
            }
        }
        core
    }

    fn push_ready(&mut self, t: TaskId) {
        let i = t as usize;
        self.ready.push(ReadyKey { priority: self.priority[i], bottom: self.bottom[i], task: t });
        if let Some(log) = &mut self.ready_log {
            log.push(t);
        }
    }

    /// From now on, note every task that becomes ready (all its
    /// dependencies succeeded, its retry delay passed, it came back from a
    /// lane, it was expanded), for [`Core::take_ready`]; the tasks ready now
    /// are noted first, in task order.
    pub fn log_ready(&mut self) {
        let now = (0..self.state.len() as TaskId).filter(|&t| self.state[t as usize] == TaskState::Ready);
        self.ready_log = Some(now.collect());
    }

    /// The tasks noted by [`Core::log_ready`] since the last call, in the
    /// order they became ready; appended to `out`.
    pub fn take_ready(&mut self, out: &mut Vec<TaskId>) {
        if let Some(log) = &mut self.ready_log {
            out.append(log);
        }
    }

    fn set_state(&mut self, t: TaskId, new: TaskState) {
        let old = std::mem::replace(&mut self.state[t as usize], new);
        *self.count_mut(old) -= 1;
        *self.count_mut(new) += 1;
    }

    fn count_mut(&mut self, s: TaskState) -> &mut u32 {
        Core::count_of(&mut self.counts, s)
    }

    pub fn state(&self, t: TaskId) -> TaskState {
        self.state[t as usize]
    }

    /// The attempt number of the task's current or last attempt (1-based).
    pub fn attempt(&self, t: TaskId) -> u32 {
        self.attempts[t as usize]
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Started tasks that wait in a lane behind another one (counted as
    /// running, but not running yet).
    pub fn queued(&self) -> u32 {
        self.lanes.iter().map(|l| l.tasks.len().saturating_sub(1) as u32).sum()
    }

    /// Resources not taken by running tasks.
    pub fn free(&self) -> &Resources {
        &self.free
    }

    /// Start up to `max` tasks whose requests fit; appends them to `out` in
    /// dispatch order and marks them running.
    pub fn schedule(&mut self, max: usize, out: &mut Vec<TaskId>) {
        self.schedule_on(NO_LANE, max, out)
    }

    /// Start up to `max` tasks on lane `lane` (a worker that runs them one at
    /// a time, in the order given): a task starts when the increase of the
    /// lane's held maximum fits in what is free. See "Dispatch policy".
    pub fn schedule_lane(&mut self, lane: usize, max: usize, out: &mut Vec<TaskId>) {
        if self.lanes.len() <= lane {
            self.lanes.resize_with(lane + 1, Lane::default);
        }
        self.schedule_on(lane as u32, max, out)
    }

    fn schedule_on(&mut self, lane: u32, max: usize, out: &mut Vec<TaskId>) {
        if self.stopped {
            return;
        }
        let mut started = 0;
        let mut skipped_over: Vec<ReadyKey> = Vec::new();
        while started < max {
            let Some(key) = self.ready.pop() else { break };
            let t = key.task;
            let req = &self.requests[t as usize];
            // What starting `t` adds to the ledger: its request, or on a lane
            // only what it raises the lane's maximum by.
            let (extra, held) = match self.lanes.get(lane as usize) {
                None => (req.clone(), None),
                Some(l) => {
                    let held = elementwise_max(&l.held, req);
                    (difference(&held, &l.held), Some(held))
                }
            };
            if extra.fits_in(&self.free) {
                self.free.take(&extra);
                if let Some(held) = held {
                    let l = &mut self.lanes[lane as usize];
                    l.held = held;
                    l.tasks.push(t);
                }
                self.lane_of[t as usize] = lane;
                self.attempts[t as usize] += 1;
                self.set_state(t, TaskState::Running);
                out.push(t);
                started += 1;
            } else {
                skipped_over.push(key);
                if skipped_over.len() > SCAN_LIMIT {
                    break;
                }
            }
        }
        self.ready.extend(skipped_over);
    }

    /// Give back what a started task holds: its request, or on a lane what
    /// the lane's maximum drops by without it.
    fn release(&mut self, t: TaskId) {
        let lane = std::mem::replace(&mut self.lane_of[t as usize], NO_LANE);
        let Some(l) = self.lanes.get_mut(lane as usize) else {
            let req = self.requests[t as usize].clone();
            self.free.give(&req);
            return;
        };
        l.tasks.retain(|&u| u != t);
        let held = l.tasks.iter().fold(Resources::default(), |m, &u| elementwise_max(&m, &self.requests[u as usize]));
        let back = difference(&l.held, &held);
        l.held = held;
        self.free.give(&back);
    }

    /// A task started on a lane never began running (its worker died while
    /// it was queued): it goes back to ready, as if never scheduled, without
    /// counting as an attempt. After `stop` it is cancelled instead.
    pub fn unstart(&mut self, t: TaskId) {
        debug_assert_eq!(self.state[t as usize], TaskState::Running);
        self.release(t);
        self.attempts[t as usize] -= 1;
        if self.stopped {
            self.set_state(t, TaskState::Cancelled);
        } else {
            self.set_state(t, TaskState::Ready);
            self.push_ready(t);
        }
    }

    /// A running task's attempt succeeded.
    pub fn on_success(&mut self, t: TaskId) {
        debug_assert_eq!(self.state[t as usize], TaskState::Running);
        self.release(t);
        self.set_state(t, TaskState::Succeeded);
        self.propagate_success(t);
    }

    /// The static dependents of `u` (a range of `dependents`; empty for a
    /// child) and, for a child, its template.
    fn dependents_of(&self, u: TaskId) -> (std::ops::Range<usize>, Option<TaskId>) {
        match u.checked_sub(self.n_static) {
            None => (self.dep_start[u as usize] as usize..self.dep_start[u as usize + 1] as usize, None),
            Some(c) => (0..0, self.parent.get(c as usize).copied()),
        }
    }

    /// Tell the dependents of `t`, which just succeeded; a template whose
    /// children have all succeeded succeeds in turn.
    fn propagate_success(&mut self, t: TaskId) {
        let mut stack = std::mem::take(&mut self.scratch);
        stack.push(t);
        while let Some(u) = stack.pop() {
            let (range, parent) = self.dependents_of(u);
            for k in range {
                let s = self.dependents[k];
                self.dependency_succeeded(s, &mut stack);
            }
            if let Some(p) = parent {
                self.dependency_succeeded(p, &mut stack);
            }
        }
        self.scratch = stack;
    }

    /// One dependency of `s` succeeded.
    fn dependency_succeeded(&mut self, s: TaskId, succeeded: &mut Vec<TaskId>) {
        let TaskState::Waiting { unfinished_deps } = self.state[s as usize] else { return };
        if unfinished_deps > 1 {
            self.state[s as usize] = TaskState::Waiting { unfinished_deps: unfinished_deps - 1 };
        } else if self.stopped {
            self.set_state(s, TaskState::Cancelled);
        } else if self.children.contains_key(&s) {
            // An expanded template: its last child succeeded.
            self.set_state(s, TaskState::Succeeded);
            succeeded.push(s);
        } else if self.is_template(s) {
            self.set_state(s, TaskState::Expanding);
            self.pending.push(s);
        } else {
            self.set_state(s, TaskState::Ready);
            self.push_ready(s);
        }
    }

    fn is_template(&self, t: TaskId) -> bool {
        self.template.get(t as usize).copied().unwrap_or(false)
    }

    /// The templates that are [`TaskState::Expanding`], in the order they
    /// became so, for the driver to [`Core::expand`] (or
    /// [`Core::fail_expansion`]); appended to `out`.
    pub fn expansions(&mut self, out: &mut Vec<TaskId>) {
        let state = &self.state;
        self.pending.retain(|&t| state[t as usize] == TaskState::Expanding);
        out.extend_from_slice(&self.pending);
    }

    /// Expand template `t` (which is [`TaskState::Expanding`]) into `n`
    /// children, ready at once; returns their ids, consecutive after every
    /// task so far. See "Dynamic fan-out".
    pub fn expand(&mut self, t: TaskId, n: u32) -> std::ops::Range<TaskId> {
        debug_assert_eq!(self.state[t as usize], TaskState::Expanding);
        let i = t as usize;
        let first = self.state.len() as TaskId;
        let new = first as usize + n as usize;
        let (retries, priority, bottom, req) = (self.retries[i], self.priority[i], self.bottom[i], &self.requests[i]);
        let req = req.clone();
        self.state.resize(new, TaskState::Ready);
        self.attempts.resize(new, 0);
        self.lost.resize(new, 0);
        self.retries.resize(new, retries);
        self.priority.resize(new, priority);
        self.bottom.resize(new, bottom);
        self.requests.resize(new, req);
        self.lane_of.resize(new, NO_LANE);
        self.parent.resize(new - self.n_static as usize, t);
        self.counts.total += n;
        self.counts.ready += n;
        self.ready.reserve(n as usize);
        for c in first..first + n {
            self.ready.push(ReadyKey { priority, bottom, task: c });
        }
        if let Some(log) = &mut self.ready_log {
            log.extend(first..first + n);
        }
        self.children.insert(t, first..first + n);
        self.pending.retain(|&u| u != t);
        if n == 0 {
            self.set_state(t, TaskState::Succeeded);
            self.propagate_success(t);
        } else {
            self.set_state(t, TaskState::Waiting { unfinished_deps: n });
        }
        first..first + n
    }

    /// Template `t` (which is [`TaskState::Expanding`]) cannot be expanded
    /// (its producer's output is missing, too long, not text): it fails for
    /// good and its dependents are skipped; returns how many.
    pub fn fail_expansion(&mut self, t: TaskId) -> u32 {
        debug_assert_eq!(self.state[t as usize], TaskState::Expanding);
        self.pending.retain(|&u| u != t);
        self.set_state(t, TaskState::Failed);
        let skipped = self.skip_dependents(t);
        if self.opts.fail_fast {
            self.stop();
        }
        skipped
    }

    /// The children of template `t`, once expanded.
    pub fn children(&self, t: TaskId) -> Option<std::ops::Range<TaskId>> {
        self.children.get(&t).cloned()
    }

    /// The template of child `t`, if `t` is one.
    pub fn parent(&self, t: TaskId) -> Option<TaskId> {
        t.checked_sub(self.n_static).and_then(|c| self.parent.get(c as usize).copied())
    }

    /// How many tasks there are, children of expansions included.
    pub fn len(&self) -> usize {
        self.state.len()
    }

    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    /// A running task's attempt failed at time `now`.
    pub fn on_failure(&mut self, t: TaskId, class: FailureClass, now: Duration) -> FailureDecision {
        debug_assert_eq!(self.state[t as usize], TaskState::Running);
        self.release(t);
        let i = t as usize;
        let retry_at = match class {
            FailureClass::Final => None,
            FailureClass::WorkerLost => {
                self.lost[i] += 1;
                (self.lost[i] < MAX_WORKER_LOST).then_some(now)
            }
            FailureClass::Retryable => {
                // Consecutive worker losses are over once an attempt ends normally.
                let own_attempts = self.attempts[i] - self.lost[i];
                self.lost[i] = 0;
                self.attempts[i] = own_attempts;
                (own_attempts <= self.retries[i]).then(|| {
                    let exp = (own_attempts - 1).min(20);
                    now + self.opts.backoff_base.saturating_mul(1 << exp).min(self.opts.backoff_max)
                })
            }
        };
        if let Some(at) = retry_at.filter(|_| !self.stopped) {
            self.set_state(t, TaskState::Backoff { at });
            self.backoff.push(t);
            return FailureDecision::Retry { at };
        }
        self.set_state(t, TaskState::Failed);
        let skipped = self.skip_dependents(t);
        if self.opts.fail_fast {
            self.stop();
        }
        FailureDecision::Failed { skipped }
    }

    /// A running task was interrupted by cancellation.
    pub fn on_cancelled(&mut self, t: TaskId) {
        self.release(t);
        self.set_state(t, TaskState::Cancelled);
        self.skip_dependents(t);
    }

    fn skip_dependents(&mut self, t: TaskId) -> u32 {
        let mut stack = vec![t];
        let mut skipped = 0;
        while let Some(u) = stack.pop() {
            let (range, parent) = self.dependents_of(u);
            for k in range {
                let s = self.dependents[k];
                skipped += self.skip_one(s, &mut stack);
            }
            if let Some(p) = parent {
                skipped += self.skip_one(p, &mut stack);
            }
        }
        skipped
    }

    /// Skip `s` if it waits (for dependencies or an expansion); 1 if it did.
    fn skip_one(&mut self, s: TaskId, stack: &mut Vec<TaskId>) -> u32 {
        if let TaskState::Waiting { .. } | TaskState::Expanding = self.state[s as usize] {
            self.set_state(s, TaskState::Skipped);
            stack.push(s);
            return 1;
        }
        0
    }

    /// Move retries that are due at `now` back to the ready queue.
    pub fn tick(&mut self, now: Duration) {
        let mut i = 0;
        while i < self.backoff.len() {
            let t = self.backoff[i];
            match self.state[t as usize] {
                TaskState::Backoff { at } if at <= now => {
                    self.backoff.swap_remove(i);
                    self.set_state(t, TaskState::Ready);
                    self.push_ready(t);
                }
                TaskState::Backoff { .. } => i += 1,
                _ => {
                    self.backoff.swap_remove(i);
                }
            }
        }
    }

    /// The earliest time a task in backoff becomes ready.
    pub fn next_wakeup(&self) -> Option<Duration> {
        self.backoff
            .iter()
            .filter_map(|&t| match self.state[t as usize] {
                TaskState::Backoff { at } => Some(at),
                _ => None,
            })
            .min()
    }

    /// Stop dispatching: every task that is not running or finished becomes
    /// cancelled. Running tasks finish (or are interrupted) and report as usual.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.ready.clear();
        self.backoff.clear();
        for t in 0..self.state.len() as TaskId {
            match self.state[t as usize] {
                TaskState::Waiting { .. } | TaskState::Ready | TaskState::Backoff { .. } | TaskState::Expanding => {
                    self.set_state(t, TaskState::Cancelled)
                }
                _ => {}
            }
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// True when nothing is running and nothing more can start.
    pub fn is_done(&self) -> bool {
        let c = &self.counts;
        c.running == 0 && c.ready == 0 && c.backoff == 0 && c.waiting == 0
    }

    /// Recompute the invariants from scratch (tests call this after every step).
    pub fn sanity_check(&self, plan: &Plan) {
        let mut c = Counts { total: self.state.len() as u32, ..Counts::default() };
        let mut in_flight = Resources::default();
        let succeeded = |d: &TaskId| self.state[*d as usize] == TaskState::Succeeded;
        for (i, s) in self.state.iter().enumerate() {
            let t = i as TaskId;
            // What `t` waits for: a child, its template's dependencies; an
            // expanded template, its children; any other task, its own.
            let deps: Vec<TaskId> = match (self.parent(t), self.children(t)) {
                (Some(p), _) => plan.tasks[p as usize].deps.clone(),
                (None, Some(r)) => {
                    assert!(plan.tasks[i].deps.iter().all(succeeded), "template {i} expanded too early");
                    r.collect()
                }
                (None, None) => plan.tasks[i].deps.clone(),
            };
            if self.is_template(t) {
                assert!(
                    !matches!(s, TaskState::Ready | TaskState::Running | TaskState::Backoff { .. }),
                    "template {i} is {s:?}"
                );
            }
            match s {
                TaskState::Waiting { unfinished_deps } => {
                    let real = deps.iter().filter(|d| !succeeded(d)).count() as u32;
                    assert_eq!(*unfinished_deps, real, "dependency count of task {i}");
                    assert!(real > 0, "waiting task {i} has no unfinished deps");
                }
                TaskState::Expanding => {
                    assert!(self.is_template(t) && self.children(t).is_none(), "task {i} is expanding");
                    assert!(deps.iter().all(succeeded), "template {i} is expanding before its dependencies succeeded");
                    assert!(self.pending.contains(&t), "expanding template {i} is not pending");
                }
                TaskState::Succeeded if self.children(t).is_some() => {
                    assert!(deps.iter().all(succeeded), "template {i} succeeded before its children");
                }
                TaskState::Ready | TaskState::Running => {
                    assert!(deps.iter().all(succeeded), "task {i} is {s:?} before its dependencies succeeded");
                    if *s == TaskState::Running && self.lane_of[i] == NO_LANE {
                        in_flight.give(&self.requests[i]);
                    }
                    assert_eq!(
                        self.lane_of[i] != NO_LANE,
                        *s == TaskState::Running && (self.lane_of[i] as usize) < self.lanes.len(),
                        "lane of task {i}"
                    );
                }
                _ => {}
            }
            *Core::count_of(&mut c, *s) += 1;
        }
        for (k, l) in self.lanes.iter().enumerate() {
            let mut held = Resources::default();
            for &t in &l.tasks {
                assert_eq!(self.lane_of[t as usize], k as u32, "task {t} listed on lane {k}");
                held = elementwise_max(&held, &self.requests[t as usize]);
            }
            assert_eq!(held, l.held, "what lane {k} holds");
            in_flight.give(&held);
        }
        assert_eq!(c, self.counts, "state counts");
        assert!(in_flight.fits_in(&self.capacity), "resources in flight exceed the capacity");
        let mut free = self.capacity.clone();
        free.take(&in_flight);
        assert_eq!(free, self.free, "free resources ledger");
    }

    fn count_of(c: &mut Counts, s: TaskState) -> &mut u32 {
        match s {
            TaskState::Waiting { .. } | TaskState::Expanding => &mut c.waiting,
            TaskState::Ready => &mut c.ready,
            TaskState::Running => &mut c.running,
            TaskState::Backoff { .. } => &mut c.backoff,
            TaskState::Succeeded => &mut c.succeeded,
            TaskState::Failed => &mut c.failed,
            TaskState::Skipped => &mut c.skipped,
            TaskState::Cancelled => &mut c.cancelled,
        }
    }
}

/// The larger of `a` and `b` on every dimension.
fn elementwise_max(a: &Resources, b: &Resources) -> Resources {
    let mut m = Resources {
        cpu_milli: a.cpu_milli.max(b.cpu_milli),
        memory: a.memory.max(b.memory),
        gpu: a.gpu.max(b.gpu),
        custom: a.custom.clone(),
    };
    for (k, v) in &b.custom {
        let e = m.custom.entry(k.clone()).or_insert(0);
        *e = (*e).max(*v);
    }
    m.custom.retain(|_, v| *v > 0);
    m
}

/// `big - small` on every dimension, for `small` within `big`.
fn difference(big: &Resources, small: &Resources) -> Resources {
    let mut d = Resources {
        cpu_milli: big.cpu_milli - small.cpu_milli,
        memory: big.memory - small.memory,
        gpu: big.gpu - small.gpu,
        custom: big.custom.clone(),
    };
    for (k, v) in &small.custom {
        if let Some(e) = d.custom.get_mut(k) {
            *e -= *v;
        }
    }
    d.custom.retain(|_, v| *v > 0);
    d
}

#[cfg(test)]
mod tests;
