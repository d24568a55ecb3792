//! The action cache's key and record: what makes two attempts of a task
//! interchangeable, and what a finished one leaves behind.
//!
//! The key is a sha256 over a versioned, canonical encoding of everything that
//! can change what a task produces: the plugin digest (which also fixes the
//! task kind and its declared outputs), params, args, env, the stdin source
//! and stdout capture, every input's name and blob digests, the command
//! filesystem (mount contents, scratch size, success exit codes, the workdir's
//! seed contents, place, size and publish globs, and `max_open_files` when
//! not the default) and
//! `deterministic` (with the task id, which seeds a deterministic task's
//! random bytes). Otherwise the task id, priority, retries, timeout, fuel,
//! output caps and resources are left out: renaming a task or giving it more
//! memory does not change its result.
//!
//! Next to the key, each part gets a 64-bit fingerprint (FNV-1a, stable
//! across builds) so that a later run can say which part changed.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::message::{OutputBlob, TaskMessage};
use crate::store::Digest;

/// Bumped whenever the encoding below changes, so that old records miss.
const KEY_VERSION: &[u8] = b"engine action key v1\0";

/// The parts of a key that a miss can be explained by, in encoding order.
pub const PART_NAMES: [&str; 7] =
    ["plugin", "params", "args", "env", "stdin/stdout", "mounts/scratch", "deterministic"];

/// A task's cache key and the fingerprints of its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionKey {
    pub key: Digest,
    pub parts: Fingerprints,
}

/// 64-bit fingerprints of each part of a key (see [`PART_NAMES`]), and one
/// per input, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprints {
    pub fixed: [u64; 7],
    pub inputs: Vec<(String, u64)>,
}

impl Fingerprints {
    /// What differs from `old`, as the words a user reads: `plugin`,
    /// `params`, `input `x``, ... Empty when every part is the same.
    pub fn changed_since(&self, old: &Fingerprints) -> Vec<String> {
        let mut v: Vec<String> = PART_NAMES
            .iter()
            .zip(self.fixed.iter().zip(old.fixed.iter()))
            .filter(|(_, (a, b))| a != b)
            .map(|(n, _)| n.to_string())
            .collect();
        for (name, fp) in &self.inputs {
            match old.inputs.iter().find(|(n, _)| n == name) {
                Some((_, o)) if o == fp => {}
                Some(_) => v.push(format!("input `{name}`")),
                None => v.push(format!("new input `{name}`")),
            }
        }
        for (name, _) in &old.inputs {
            if !self.inputs.iter().any(|(n, _)| n == name) {
                v.push(format!("input `{name}` removed"));
            }
        }
        v
    }
}

/// Writes the canonical encoding into the key hash and the current part's
/// fingerprint at once.
struct Encoder {
    sha: Sha256,
    fnv: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Encoder {
    fn bytes(&mut self, b: &[u8]) {
        self.raw(&(b.len() as u64).to_le_bytes());
        self.raw(b);
    }
    fn raw(&mut self, b: &[u8]) {
        self.sha.update(b);
        for &x in b {
            self.fnv = (self.fnv ^ x as u64).wrapping_mul(FNV_PRIME);
        }
    }
    fn u64(&mut self, v: u64) {
        self.raw(&v.to_le_bytes());
    }
    /// Start a new part (tagged), returning the fingerprint of the last one.
    fn part(&mut self, tag: u8) -> u64 {
        let fp = std::mem::replace(&mut self.fnv, FNV_OFFSET);
        self.raw(&[tag]);
        fp
    }
}

/// The cache key of `msg`. `mount_digest` gives the content digest of a
/// mount's host path; `None` from it (an unreadable mount) makes the task
/// uncacheable, and so does `None` here.
pub fn action_key(msg: &TaskMessage, mount_digest: &dyn Fn(&Path) -> Option<Digest>) -> Option<ActionKey> {
    action_key_of(&KeyParts::of(msg), mount_digest)
}

/// What a cache key is computed from, borrowed from a [`TaskMessage`] or,
/// before any message is built, from the task's spec and its inputs.
pub struct KeyParts<'a> {
    pub plugin: &'a Digest,
    pub params: &'a str,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    pub stdin: Option<&'a str>,
    pub stdout: Option<&'a str>,
    pub fs: Option<&'a crate::plan::CommandFs>,
    pub max_open_files: u32,
    pub deterministic: bool,
    /// The task id: part of the key only with `deterministic`, whose random
    /// stream is seeded from it.
    pub name: &'a str,
    pub inputs: &'a [super::message::MsgInput],
}

impl<'a> KeyParts<'a> {
    pub fn of(msg: &'a TaskMessage) -> KeyParts<'a> {
        KeyParts {
            plugin: &msg.plugin.digest,
            params: &msg.params,
            args: &msg.command.args,
            env: &msg.command.env,
            stdin: msg.command.stdin.as_deref(),
            stdout: msg.command.stdout.as_deref(),
            fs: msg.command.fs.as_deref(),
            max_open_files: msg.limits.max_open_files,
            deterministic: msg.deterministic,
            name: &msg.name,
            inputs: &msg.inputs,
        }
    }
}

/// [`action_key`] of borrowed parts.
pub fn action_key_of(msg: &KeyParts<'_>, mount_digest: &dyn Fn(&Path) -> Option<Digest>) -> Option<ActionKey> {
    let mut e = Encoder { sha: Sha256::new(), fnv: FNV_OFFSET };
    e.raw(KEY_VERSION);
    let mut fixed = [0u64; 7];
    e.part(0);
    e.raw(&msg.plugin.0);
    fixed[0] = e.part(1);
    e.bytes(msg.params.as_bytes());
    fixed[1] = e.part(2);
    e.u64(msg.args.len() as u64);
    for a in msg.args {
        e.bytes(a.as_bytes());
    }
    fixed[2] = e.part(3);
    e.u64(msg.env.len() as u64);
    for (k, v) in msg.env {
        e.bytes(k.as_bytes());
        e.bytes(v.as_bytes());
    }
    fixed[3] = e.part(4);
    for s in [msg.stdin, msg.stdout] {
        match s {
            Some(s) => e.bytes(s.as_bytes()),
            None => e.raw(&[0xff]),
        }
    }
    fixed[4] = e.part(5);
    match msg.fs {
        None => e.raw(&[0]),
        Some(fs) => {
            e.raw(&[1]);
            e.u64(fs.mounts.len() as u64);
            for m in &fs.mounts {
                e.bytes(m.guest.as_bytes());
                e.raw(&mount_digest(&m.host)?.0);
            }
            e.u64(fs.scratch.map_or(u64::MAX, |s| s));
            e.u64(fs.success_exit_codes.len() as u64);
            for c in &fs.success_exit_codes {
                e.raw(&c.to_le_bytes());
            }
            match &fs.workdir {
                None => e.raw(&[0]),
                Some(w) => {
                    e.raw(&[1]);
                    match &w.from {
                        Some(from) => e.raw(&mount_digest(from)?.0),
                        None => e.raw(&[0; 32]),
                    }
                    e.bytes(w.at.as_bytes());
                    e.u64(w.size);
                    e.u64(w.publish.len() as u64);
                    for p in &w.publish {
                        e.bytes(p.as_bytes());
                    }
                }
            }
        }
    }
    // A descriptor cap other than the default can change what a program does.
    if msg.max_open_files != crate::task::message::DEFAULT_MAX_OPEN_FILES {
        e.raw(&[2]);
        e.u64(u64::from(msg.max_open_files));
    }
    // Without `/in` and `/out` the program sees other descriptor numbers.
    if msg.fs.is_some_and(|f| f.no_io_dirs) {
        e.raw(&[3]);
    }
    fixed[5] = e.part(6);
    e.raw(&[msg.deterministic as u8]);
    // A deterministic task's random bytes are seeded from its id.
    if msg.deterministic {
        e.bytes(msg.name.as_bytes());
    }
    fixed[6] = e.part(7);
    let mut inputs = Vec::with_capacity(msg.inputs.len());
    e.sha.update((msg.inputs.len() as u64).to_le_bytes());
    for i in msg.inputs {
        e.bytes(i.name.as_bytes());
        e.raw(&[i.list as u8]);
        e.u64(i.items.len() as u64);
        for b in &i.items {
            e.raw(&b.digest.0);
            e.u64(b.len);
        }
        inputs.push((i.name.clone(), e.part(8)));
    }
    Some(ActionKey { key: Digest(e.sha.finalize().into()), parts: Fingerprints { fixed, inputs } })
}

const RECORD_VERSION: u8 = 1;

/// What the action cache keeps for a task that succeeded: its outputs, its
/// exit code, and the metrics of the attempt that produced them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub outputs: Vec<OutputBlob>,
    pub exit_code: Option<i32>,
    /// Wall time of the original attempt, microseconds.
    pub duration_us: u64,
    pub peak_memory: u64,
    pub fuel_consumed: Option<u64>,
}

impl ActionRecord {
    /// The stored form: a version byte, then postcard (compact: a record is
    /// written for every task that succeeds).
    pub fn encode(&self) -> Vec<u8> {
        let v = vec![RECORD_VERSION];
        postcard::to_extend::<_, Vec<u8>>(self, v).unwrap_or_default()
    }
    /// `None` for anything that is not a record of this version (a miss,
    /// never an error).
    pub fn decode(bytes: &[u8]) -> Option<ActionRecord> {
        let (&version, rest) = bytes.split_first()?;
        if version != RECORD_VERSION {
            return None;
        }
        postcard::from_bytes(rest).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::message::{CommandOpts, Limits, MsgInput, PluginRef};
    use std::path::PathBuf;

    fn msg() -> TaskMessage {
        TaskMessage {
            task: 0,
            name: "a".into(),
            attempt: 1,
            plugin: PluginRef { digest: Digest::of(b"plugin"), path: PathBuf::from("/p.wasm") },
            inputs: vec![MsgInput {
                name: "x".into(),
                list: false,
                items: vec![crate::store::BlobRef { digest: Digest::of(b"x"), len: 1 }],
            }],
            params: "{}".into(),
            limits: Limits::default(),
            command: CommandOpts::default(),
            deterministic: false,
        }
    }

    fn key(m: &TaskMessage) -> ActionKey {
        action_key(m, &|_| Some(Digest::EMPTY)).expect("a key")
    }

    #[test]
    fn identity_and_attempt_details_are_not_in_the_key() {
        let a = key(&msg());
        let mut m = msg();
        m.task = 7;
        m.name = "renamed".into();
        m.attempt = 3;
        m.limits.memory *= 2;
        m.limits.fuel = Some(10);
        assert_eq!(key(&m), a);
    }

    #[test]
    fn a_deterministic_task_is_keyed_by_its_id_which_seeds_its_random_bytes() {
        let mut a = msg();
        a.deterministic = true;
        let mut b = a.clone();
        b.name = "renamed".into();
        assert_ne!(key(&a).key, key(&b).key);
        assert_eq!(key(&b).parts.changed_since(&key(&a).parts), vec!["deterministic".to_string()]);
    }

    #[test]
    fn each_part_changes_the_key_and_is_named() {
        let base = key(&msg());
        let mut cases: Vec<(TaskMessage, &str)> = Vec::new();
        let mut m = msg();
        m.plugin.digest = Digest::of(b"other");
        cases.push((m, "plugin"));
        let mut m = msg();
        m.params = r#"{"k":1}"#.into();
        cases.push((m, "params"));
        let mut m = msg();
        m.command.args = vec!["-v".into()];
        cases.push((m, "args"));
        let mut m = msg();
        m.command.env = vec![("A".into(), "1".into())];
        cases.push((m, "env"));
        let mut m = msg();
        m.command.stdin = Some("x".into());
        cases.push((m, "stdin/stdout"));
        let mut m = msg();
        m.deterministic = true;
        cases.push((m, "deterministic"));
        let mut m = msg();
        m.inputs[0].items[0].digest = Digest::of(b"y");
        cases.push((m, "input `x`"));
        let mut m = msg();
        m.command.fs = Some(Box::new(crate::plan::CommandFs { no_io_dirs: true, ..Default::default() }));
        cases.push((m, "mounts/scratch"));
        for (m, part) in cases {
            let k = key(&m);
            assert_ne!(k.key, base.key, "{part}");
            assert_eq!(k.parts.changed_since(&base.parts), vec![part.to_string()]);
        }
    }

    #[test]
    fn an_unreadable_mount_makes_the_task_uncacheable() {
        let mut m = msg();
        m.command.fs = Some(Box::new(crate::plan::CommandFs {
            mounts: vec![crate::plan::Mount { guest: "/m".into(), host: PathBuf::from("/nowhere") }],
            scratch: None,
            success_exit_codes: vec![0],
            workdir: None,
            no_io_dirs: false,
        }));
        assert!(action_key(&m, &|_| None).is_none());
        let a = action_key(&m, &|_| Some(Digest::of(b"1"))).expect("a key");
        let b = action_key(&m, &|_| Some(Digest::of(b"2"))).expect("a key");
        assert_eq!(b.parts.changed_since(&a.parts), vec!["mounts/scratch".to_string()]);
    }

    #[test]
    fn records_round_trip_and_garbage_is_a_miss() {
        let r = ActionRecord {
            outputs: vec![OutputBlob {
                name: "out".into(),
                blob: crate::store::BlobRef { digest: Digest::of(b"o"), len: 1 },
            }],
            exit_code: Some(0),
            duration_us: 12,
            peak_memory: 65536,
            fuel_consumed: None,
        };
        assert_eq!(ActionRecord::decode(&r.encode()), Some(r.clone()));
        assert_eq!(ActionRecord::decode(b"{\"outputs\":"), None);
        let mut torn = r.encode();
        torn.truncate(torn.len() - 3);
        assert_eq!(ActionRecord::decode(&torn), None);
    }
}
