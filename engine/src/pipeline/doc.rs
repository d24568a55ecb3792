//! A compact, spanned TOML document tree built straight from `toml_parser` events.
//!
//! `toml::de::DeTable` keeps a hash map and a `Cow` per key and needs the whole
//! token and event streams in memory at once: on a million-task pipeline that is
//! about 3 GiB and 4 s. This module streams the lexer's tokens in chunks that end
//! at top-level newlines (where the parser restarts cleanly), feeds them to
//! `toml_parser`'s push parser, and applies TOML's table semantics (headers,
//! arrays of tables, dotted keys, inline tables, duplicate keys) into a flat arena
//! of small nodes. On a large file the lexing, parsing and decoding run on a
//! helper thread, one chunk ahead of the builder (see [`Doc::parse`]). Strings
//! that need no unescaping are stored as byte ranges of the source. Every node
//! and key keeps its byte span for diagnostics.
//!
//! Syntax errors come back as [`SyntaxError`]s (the document is then incomplete);
//! structural errors such as duplicate keys come back as [`Diagnostic`]s and the
//! offending definition is dropped, so later passes can still run on the rest.

use std::borrow::Cow;
use std::hash::{BuildHasher, Hasher};

use hashbrown::HashTable;
use std::ops::Range;

use toml_parser::decoder::{Encoding, ScalarKind};
use toml_parser::lexer::TokenKind;
use toml_parser::parser::{EventReceiver, RecursionGuard, ValidateWhitespace, parse_document};
use toml_parser::{ErrorSink, ParseError, Raw, Source, Span};

use super::Threads;
use super::diag::{Code, Diagnostic};

/// Index of a node in [`Doc::nodes`].
pub type NodeId = u32;

/// A string of the document: either a byte range of the source (no escapes) or
/// an index into [`Doc::owned`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Str {
    start: u32,
    len: u32,
}

const OWNED: u32 = u32::MAX;

/// Byte span in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sp {
    pub start: u32,
    pub end: u32,
}

impl Sp {
    pub fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
    fn of(s: Span) -> Sp {
        Sp { start: s.start() as u32, end: s.end() as u32 }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Val {
    Str(Str),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A date-time; its text is the node's span.
    Datetime,
    Array(u32),
    Table(u32),
}

#[derive(Debug, Clone, Copy)]
pub struct Node {
    pub span: Sp,
    pub val: Val,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Created as a parent of a `[a.b]` header; may still be defined by a header.
    Implicit,
    /// Defined by a `[header]` (or the root).
    Header,
    /// Created by a dotted key `a.b = 1`.
    Dotted,
    /// `{ ... }`: closed once written.
    Inline,
    /// An element of an array of tables `[[a]]`.
    ArrayElem,
}

#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub key: Str,
    pub key_span: Sp,
    pub value: NodeId,
}

struct Table {
    entries: Vec<Entry>,
    /// Entry indices hashed by key, built once a table grows past a few
    /// entries. Each slot is `(short hash << 32) | entry index`: growing the
    /// table and most failed comparisons never touch the entries or the source.
    index: Option<Box<HashTable<u64>>>,
    origin: Origin,
}

struct Array {
    items: Vec<NodeId>,
    of_tables: bool,
}

/// A TOML syntax error (message, primary span, label).
#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub message: String,
    pub span: Range<usize>,
    pub label: String,
}

/// The parsed document.
pub struct Doc<'s> {
    src: &'s str,
    nodes: Vec<Node>,
    tables: Vec<Table>,
    arrays: Vec<Array>,
    owned: Vec<String>,
}

pub const ROOT: NodeId = 0;
const INDEX_AFTER: usize = 8;
/// Deepest nesting of arrays and inline tables accepted.
const MAX_DEPTH: u32 = 64;
/// Tokens per parser chunk (chunks end at a top-level newline).
const CHUNK_TOKENS: usize = 1 << 16;
/// Files at least this large are lexed and parsed on a helper thread.
const PARALLEL_PARSE_BYTES: usize = 1 << 20;

impl<'s> Doc<'s> {
    /// Parse `src`. Returns the document, syntax errors and structural errors.
    ///
    /// Two stages: [`record_chunks`] lexes, parses and decodes the text into
    /// chunks of [`Ev`]s, and the [`Builder`] applies them to the tree. On a
    /// large file the first stage runs on a helper thread, one chunk ahead of
    /// the second; both stages see the events in file order either way, so the
    /// document and the errors (and their order) do not depend on it.
    pub fn parse(src: &'s str) -> (Doc<'s>, Vec<SyntaxError>, Vec<Diagnostic>) {
        Self::parse_with(src, Threads::Auto)
    }

    /// [`Doc::parse`], on this thread only when `threads` is [`Threads::One`].
    pub(crate) fn parse_with(src: &'s str, threads: Threads) -> (Doc<'s>, Vec<SyntaxError>, Vec<Diagnostic>) {
        let mut b = Builder {
            doc: Doc { src, nodes: Vec::new(), tables: Vec::new(), arrays: Vec::new(), owned: Vec::new() },
            header: None,
            keys: Keys::new(),
            pending: None,
            frames: Vec::new(),
            current: ROOT,
            current_keys: Keys::new(),
            diags: Vec::new(),
        };
        let root = b.new_table(Origin::Header, Sp::default());
        debug_assert_eq!(root, ROOT);
        let mut errors: Vec<ParseError> = Vec::new();
        let parallel = threads == Threads::Auto
            && src.len() >= PARALLEL_PARSE_BYTES
            && std::thread::available_parallelism().is_ok_and(|p| p.get() > 1);
        let threaded = parallel
            && std::thread::scope(|scope| {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Ev<'s>>>(2);
                // Applied chunks go back to be refilled: no fresh pages per chunk.
                let (back_tx, back_rx) = std::sync::mpsc::channel::<Vec<Ev<'s>>>();
                let helper = std::thread::Builder::new().name("toml-lexer".into()).spawn_scoped(scope, move || {
                    record_chunks(src, |events| {
                        let spare = back_rx.try_recv().unwrap_or_default();
                        // The receiver only goes away if applying panicked.
                        let _ = tx.send(std::mem::replace(events, spare));
                    })
                });
                if helper.is_err() {
                    return false;
                }
                for mut events in rx {
                    b.apply(&mut events, &mut errors);
                    let _ = back_tx.send(events);
                }
                true
            });
        if !threaded {
            record_chunks(src, |events| b.apply(events, &mut errors));
        }
        let syntax = errors.iter().map(syntax_error).collect();
        (b.doc, syntax, b.diags)
    }

    pub fn src(&self) -> &'s str {
        self.src
    }

    pub fn node(&self, id: NodeId) -> Node {
        self.nodes.get(id as usize).copied().unwrap_or(Node { span: Sp::default(), val: Val::Bool(false) })
    }

    pub fn str(&self, s: Str) -> &str {
        if s.start == OWNED {
            self.owned.get(s.len as usize).map(String::as_str).unwrap_or("")
        } else {
            self.src.get(s.start as usize..(s.start + s.len) as usize).unwrap_or("")
        }
    }

    /// Entries of a table node (empty for other nodes), in source order.
    pub fn entries(&self, id: NodeId) -> &[Entry] {
        match self.node(id).val {
            Val::Table(t) => self.tables.get(t as usize).map(|t| t.entries.as_slice()).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Items of an array node.
    pub fn items(&self, id: NodeId) -> &[NodeId] {
        match self.node(id).val {
            Val::Array(a) => self.arrays.get(a as usize).map(|a| a.items.as_slice()).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Look up a key in a table node.
    pub fn get(&self, table: NodeId, key: &str) -> Option<Entry> {
        let i = self.position(table, key)?;
        self.entries(table).get(i).copied()
    }

    /// The index of a key among the [`Doc::entries`] of a table node.
    pub fn position(&self, table: NodeId, key: &str) -> Option<usize> {
        let Val::Table(t) = self.node(table).val else { return None };
        let t = self.tables.get(t as usize)?;
        if let Some(index) = &t.index {
            let h = short_hash(key);
            let found = index.find(spread(h), |&slot| {
                (slot >> 32) as u32 == h && t.entries.get(slot as u32 as usize).is_some_and(|e| self.str(e.key) == key)
            });
            return found.map(|&slot| slot as u32 as usize);
        }
        t.entries.iter().position(|e| self.str(e.key) == key)
    }

    /// The source text of a node (for date-times).
    pub fn text(&self, id: NodeId) -> &'s str {
        self.src.get(self.node(id).span.range()).unwrap_or("")
    }

    /// Drop the heap parts of a table subtree that is no longer needed.
    pub fn release(&mut self, id: NodeId) {
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            match self.node(id).val {
                Val::Table(t) => {
                    if let Some(t) = self.tables.get_mut(t as usize) {
                        stack.extend(t.entries.iter().map(|e| e.value));
                        t.entries = Vec::new();
                        t.index = None;
                    }
                }
                Val::Array(a) => {
                    if let Some(a) = self.arrays.get_mut(a as usize) {
                        stack.extend(a.items.iter().copied());
                        a.items = Vec::new();
                    }
                }
                _ => {}
            }
        }
    }

    /// Replace a scalar node's value by a string (the node keeps its span):
    /// how `[vars]` substitution rewrites the document before the passes read it.
    pub fn set_str(&mut self, id: NodeId, s: String) {
        let i = self.owned.len() as u32;
        self.owned.push(s);
        if let Some(n) = self.nodes.get_mut(id as usize) {
            n.val = Val::Str(Str { start: OWNED, len: i });
        }
    }

    /// Rename the key of entry `i` of a table node (as [`Doc::set_str`] does
    /// for values); the table's index is dropped, so lookups stay right.
    pub fn set_key(&mut self, table: NodeId, i: usize, key: String) {
        let Val::Table(t) = self.node(table).val else { return };
        let k = self.owned.len() as u32;
        self.owned.push(key);
        if let Some(t) = self.tables.get_mut(t as usize)
            && let Some(e) = t.entries.get_mut(i)
        {
            e.key = Str { start: OWNED, len: k };
            t.index = None;
        }
    }

    /// Replace a scalar node's value by an integer, float or boolean.
    pub fn set_scalar(&mut self, id: NodeId, val: Val) {
        if matches!(val, Val::Int(_) | Val::Float(_) | Val::Bool(_))
            && let Some(n) = self.nodes.get_mut(id as usize)
        {
            n.val = val;
        }
    }

    /// A short name for the node's type, for "expected X, found Y" messages.
    pub fn type_name(&self, id: NodeId) -> &'static str {
        match self.node(id).val {
            Val::Str(_) => "a string",
            Val::Int(_) => "an integer",
            Val::Float(_) => "a float",
            Val::Bool(_) => "a boolean",
            Val::Datetime => "a date-time",
            Val::Array(_) => "an array",
            Val::Table(_) => "a table",
        }
    }
}

/// A 32-bit hash of a key, kept in the index slots.
fn short_hash(key: &str) -> u32 {
    let mut h = rustc_hash::FxBuildHasher.build_hasher();
    h.write(key.as_bytes());
    let h = h.finish();
    (h >> 32) as u32 ^ h as u32
}

/// The 64-bit hash the index uses, computed from the short hash alone so that
/// rehashing needs nothing but the slot (multiplying by an odd constant mixes
/// the bits into the high ones, which pick the control byte).
fn spread(h: u32) -> u64 {
    u64::from(h).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn index_slot(h: u32, i: usize) -> u64 {
    (u64::from(h) << 32) | i as u64
}

fn str_of<'a>(src: &'a str, owned: &'a [String], s: Str) -> &'a str {
    if s.start == OWNED {
        owned.get(s.len as usize).map(String::as_str).unwrap_or("")
    } else {
        src.get(s.start as usize..(s.start + s.len) as usize).unwrap_or("")
    }
}

fn syntax_error(e: &ParseError) -> SyntaxError {
    let span = e.unexpected().or(e.context()).map(|s| s.start()..s.end()).unwrap_or(0..0);
    let mut label = String::new();
    if let Some(expected) = e.expected() {
        if !expected.is_empty() {
            label.push_str("expected ");
            for (i, x) in expected.iter().enumerate() {
                if i != 0 {
                    label.push_str(if i + 1 == expected.len() { " or " } else { ", " });
                }
                match x {
                    toml_parser::Expected::Literal("\n") => label.push_str("a newline"),
                    toml_parser::Expected::Literal(l) => {
                        label.push('`');
                        if l.chars().all(|c| c.is_ascii_control()) {
                            label.push_str(&l.escape_debug().to_string());
                        } else {
                            label.push_str(l);
                        }
                        label.push('`');
                    }
                    toml_parser::Expected::Description(d) => label.push_str(d),
                    _ => label.push_str("something else"),
                }
            }
        } else {
            label.push_str("unexpected content");
        }
    }
    SyntaxError { message: format!("invalid TOML: {}", e.description()), span, label }
}

#[derive(Clone)]
struct Key<'s> {
    text: Cow<'s, str>,
    span: Sp,
}

/// The keys of one statement: almost always one or two, kept inline.
type Keys<'s> = smallvec::SmallVec<[Key<'s>; 2]>;

struct Header<'s> {
    is_array: bool,
    open: Sp,
    keys: Keys<'s>,
}

enum Frame<'s> {
    Array { node: NodeId },
    Inline { node: NodeId, keys: Keys<'s>, pending: Option<Keys<'s>> },
}

struct Builder<'s> {
    doc: Doc<'s>,
    header: Option<Header<'s>>,
    /// Keys of the key-value statement being read at the top level.
    keys: Keys<'s>,
    /// Keys of a top-level statement whose `=` has been seen.
    pending: Option<Keys<'s>>,
    frames: Vec<Frame<'s>>,
    /// Table that top-level key-values go into.
    current: NodeId,
    /// The keys of the header of `current` (for messages).
    current_keys: Keys<'s>,
    diags: Vec<Diagnostic>,
}

fn join_path(base: &str, keys: &[Key<'_>]) -> String {
    let mut s = String::from(base);
    for k in keys {
        if !s.is_empty() {
            s.push('.');
        }
        s.push_str(&k.text);
    }
    s
}

impl<'s> Builder<'s> {
    fn push_node(&mut self, span: Sp, val: Val) -> NodeId {
        let id = self.doc.nodes.len() as NodeId;
        self.doc.nodes.push(Node { span, val });
        id
    }

    fn new_table(&mut self, origin: Origin, span: Sp) -> NodeId {
        let t = self.doc.tables.len() as u32;
        self.doc.tables.push(Table { entries: Vec::new(), index: None, origin });
        self.push_node(span, Val::Table(t))
    }

    fn new_array(&mut self, of_tables: bool, span: Sp) -> NodeId {
        let a = self.doc.arrays.len() as u32;
        self.doc.arrays.push(Array { items: Vec::new(), of_tables });
        self.push_node(span, Val::Array(a))
    }

    fn make_str(&mut self, c: Cow<'s, str>) -> Str {
        match c {
            Cow::Borrowed(b) => {
                let base = self.doc.src.as_ptr() as usize;
                let p = b.as_ptr() as usize;
                if p >= base && p + b.len() <= base + self.doc.src.len() {
                    Str { start: (p - base) as u32, len: b.len() as u32 }
                } else {
                    self.own(b.to_owned())
                }
            }
            Cow::Owned(o) => self.own(o),
        }
    }

    fn own(&mut self, s: String) -> Str {
        let i = self.doc.owned.len() as u32;
        self.doc.owned.push(s);
        Str { start: OWNED, len: i }
    }

    fn table_mut(&mut self, node: NodeId) -> Option<&mut Table> {
        match self.doc.nodes.get(node as usize)?.val {
            Val::Table(t) => self.doc.tables.get_mut(t as usize),
            _ => None,
        }
    }

    fn lookup(&self, table: NodeId, key: &str) -> Option<Entry> {
        self.doc.get(table, key)
    }

    fn add_entry(&mut self, table: NodeId, key: &Key<'s>, value: NodeId) {
        let text = key.text.clone();
        let kstr = self.make_str(text);
        let Val::Table(ti) = self.doc.node(table).val else { return };
        let Some(t) = self.doc.tables.get_mut(ti as usize) else { return };
        let rehash = |&slot: &u64| spread((slot >> 32) as u32);
        let h = short_hash(&key.text);
        if let Some(index) = &mut t.index {
            index.insert_unique(spread(h), index_slot(h, t.entries.len()), rehash);
        } else if t.entries.len() >= INDEX_AFTER {
            let mut index = HashTable::with_capacity(t.entries.len() * 2 + 2);
            for (i, e) in t.entries.iter().enumerate() {
                let h = short_hash(str_of(self.doc.src, &self.doc.owned, e.key));
                index.insert_unique(spread(h), index_slot(h, i), rehash);
            }
            index.insert_unique(spread(h), index_slot(h, t.entries.len()), rehash);
            t.index = Some(Box::new(index));
        }
        t.entries.push(Entry { key: kstr, key_span: key.span, value });
    }

    fn origin(&self, node: NodeId) -> Option<Origin> {
        match self.doc.nodes.get(node as usize)?.val {
            Val::Table(t) => self.doc.tables.get(t as usize).map(|t| t.origin),
            _ => None,
        }
    }

    fn duplicate(&mut self, path: String, again: Sp, first: Sp) {
        let path = if path.is_empty() { "key".to_string() } else { path };
        self.diags.push(
            Diagnostic::error(Code::DuplicateKey, format!("`{path}` is defined more than once"))
                .primary(again.range(), "defined again here")
                .secondary(first.range(), "first defined here"),
        );
    }

    /// Insert `value` at the dotted `keys` below `table`.
    fn insert_dotted(&mut self, table: NodeId, keys: Keys<'s>, value: NodeId) {
        let Some((last, parents)) = keys.split_last() else { return };
        let mut t = table;
        for (i, k) in parents.iter().enumerate() {
            match self.lookup(t, &k.text) {
                None => {
                    let child = self.new_table(Origin::Dotted, k.span);
                    self.add_entry(t, k, child);
                    t = child;
                }
                Some(e) => match self.origin(e.value) {
                    Some(Origin::Dotted) => t = e.value,
                    _ => {
                        let base = if table == self.current { self.current_path() } else { String::new() };
                        let path = join_path(&base, &keys[..=i]);
                        self.duplicate(path, k.span, e.key_span);
                        return;
                    }
                },
            }
        }
        if let Some(e) = self.lookup(t, &last.text) {
            let base = if table == self.current { self.current_path() } else { String::new() };
            let path = join_path(&base, &keys);
            self.duplicate(path, last.span, e.key_span);
            return;
        }
        self.add_entry(t, last, value);
    }

    /// A value is complete: put it where it belongs.
    fn complete(&mut self, value: NodeId) {
        match self.frames.last_mut() {
            Some(Frame::Array { node, .. }) => {
                let node = *node;
                if let Some(Val::Array(a)) = self.doc.nodes.get(node as usize).map(|n| n.val)
                    && let Some(a) = self.doc.arrays.get_mut(a as usize)
                {
                    a.items.push(value);
                }
            }
            Some(Frame::Inline { node, pending, .. }) => {
                let node = *node;
                if let Some(keys) = pending.take() {
                    self.insert_dotted(node, keys, value);
                }
            }
            None => {
                if let Some(keys) = self.pending.take() {
                    self.insert_dotted(self.current, keys, value);
                }
            }
        }
    }

    fn current_path(&self) -> String {
        join_path("", &self.current_keys)
    }

    /// Give back the spare capacity of a table that is complete.
    fn shrink(&mut self, node: NodeId) {
        if let Some(t) = self.table_mut(node) {
            t.entries.shrink_to_fit();
        }
    }

    fn apply_header(&mut self, h: Header<'s>, close: Sp) {
        let done = self.current;
        self.shrink(done);
        self.apply_header_inner(&h, close);
        self.current_keys = h.keys;
    }

    fn apply_header_inner(&mut self, h: &Header<'s>, close: Sp) {
        let span = Sp { start: h.open.start, end: close.end };
        let path = || join_path("", &h.keys);
        let Some((last, parents)) = h.keys.split_last() else {
            self.current = self.new_table(Origin::Header, span);
            return;
        };
        let mut t = ROOT;
        for (i, k) in parents.iter().enumerate() {
            match self.lookup(t, &k.text) {
                None => {
                    let child = self.new_table(Origin::Implicit, k.span);
                    self.add_entry(t, k, child);
                    t = child;
                }
                Some(e) => {
                    let node = self.doc.node(e.value);
                    match node.val {
                        Val::Table(_) if self.origin(e.value) != Some(Origin::Inline) => t = e.value,
                        Val::Array(a) if self.doc.arrays.get(a as usize).is_some_and(|a| a.of_tables) => {
                            t = self.doc.arrays.get(a as usize).and_then(|a| a.items.last().copied()).unwrap_or(ROOT);
                        }
                        _ => {
                            self.duplicate(join_path("", &h.keys[..=i]), k.span, e.key_span);
                            self.current = self.new_table(Origin::Header, span);
                            return;
                        }
                    }
                }
            }
        }
        if h.is_array {
            let arr = match self.lookup(t, &last.text) {
                None => {
                    let arr = self.new_array(true, span);
                    self.add_entry(t, last, arr);
                    Some(arr)
                }
                Some(e) => match self.doc.node(e.value).val {
                    Val::Array(a) if self.doc.arrays.get(a as usize).is_some_and(|a| a.of_tables) => Some(e.value),
                    _ => {
                        self.duplicate(path(), last.span, e.key_span);
                        None
                    }
                },
            };
            let elem = self.new_table(Origin::ArrayElem, span);
            if let Some(arr) = arr
                && let Val::Array(a) = self.doc.node(arr).val
                && let Some(a) = self.doc.arrays.get_mut(a as usize)
            {
                a.items.push(elem);
            }
            self.current = elem;
        } else {
            match self.lookup(t, &last.text) {
                None => {
                    let child = self.new_table(Origin::Header, span);
                    self.add_entry(t, last, child);
                    self.current = child;
                }
                Some(e) if self.origin(e.value) == Some(Origin::Implicit) => {
                    if let Some(tb) = self.table_mut(e.value) {
                        tb.origin = Origin::Header;
                    }
                    if let Some(n) = self.doc.nodes.get_mut(e.value as usize) {
                        n.span = span;
                    }
                    self.current = e.value;
                }
                Some(e) => {
                    self.duplicate(path(), last.span, e.key_span);
                    self.current = self.new_table(Origin::Header, span);
                }
            }
        }
    }

    /// Called between chunks: the parser restarts at a top-level line.
    fn end_of_chunk(&mut self) {
        self.keys.clear();
        self.pending = None;
        self.frames.clear();
        self.header = None;
    }
}

/// One parser event, with its key or scalar already decoded: what the
/// [`Builder`] needs, in file order. Errors are events too, so that they keep
/// their place among the errors the builder reports.
enum Ev<'s> {
    StdTableOpen(Sp),
    StdTableClose(Sp),
    ArrayTableOpen(Sp),
    ArrayTableClose(Sp),
    InlineTableOpen(Sp),
    InlineTableClose(Sp),
    ArrayOpen(Sp),
    ArrayClose(Sp),
    Key(Key<'s>),
    KeyValSep,
    Scalar(Sp, Scalar<'s>),
    Newline,
    Error(Box<ParseError>),
    /// The parser restarts after this (a top-level newline).
    EndOfChunk,
}

enum Scalar<'s> {
    Str(Cow<'s, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Datetime,
}

/// Lex `src` in chunks that end at top-level newlines (where the parser
/// restarts cleanly), parse and decode each into events, and hand each chunk's
/// events to `emit` (which may take them).
fn record_chunks<'s>(src: &'s str, mut emit: impl FnMut(&mut Vec<Ev<'s>>)) {
    let source = Source::new(src);
    let out = std::cell::RefCell::new(Vec::new());
    let mut buf = Vec::with_capacity(CHUNK_TOKENS + 1024);
    let mut depth = 0u32;
    let run = |buf: &mut Vec<toml_parser::lexer::Token>| {
        let mut rec = Recorder { src, out: &out };
        let mut sink = Sink(&out);
        let mut ws = ValidateWhitespace::new(&mut rec, source);
        let mut guard = RecursionGuard::new(&mut ws, MAX_DEPTH);
        parse_document(buf, &mut guard, &mut sink);
        buf.clear();
    };
    for tok in source.lex() {
        match tok.kind() {
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => depth += 1,
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => depth = depth.saturating_sub(1),
            _ => {}
        }
        let cut = tok.kind() == TokenKind::Newline && depth == 0 && buf.len() >= CHUNK_TOKENS;
        buf.push(tok);
        if cut {
            run(&mut buf);
            let mut events = out.borrow_mut();
            events.push(Ev::EndOfChunk);
            emit(&mut events);
            events.clear();
        }
    }
    run(&mut buf);
    emit(&mut out.borrow_mut());
}

/// Records parser events; shares its output with the [`Sink`] given to the parser.
struct Recorder<'s, 'o> {
    src: &'s str,
    out: &'o std::cell::RefCell<Vec<Ev<'s>>>,
}

struct Sink<'s, 'o>(&'o std::cell::RefCell<Vec<Ev<'s>>>);

impl ErrorSink for Sink<'_, '_> {
    fn report_error(&mut self, error: ParseError) {
        self.0.borrow_mut().push(Ev::Error(Box::new(error)));
    }
}

impl<'s> Recorder<'s, '_> {
    fn push(&mut self, ev: Ev<'s>) {
        self.out.borrow_mut().push(ev);
    }

    fn raw(&self, span: Span, enc: Option<Encoding>) -> Option<Raw<'s>> {
        let text = self.src.get(span.start()..span.end())?;
        Some(Raw::new_unchecked(text, enc, span))
    }
}

impl<'s> EventReceiver for Recorder<'s, '_> {
    fn std_table_open(&mut self, span: Span, _error: &mut dyn ErrorSink) {
        self.push(Ev::StdTableOpen(Sp::of(span)));
    }
    fn array_table_open(&mut self, span: Span, _error: &mut dyn ErrorSink) {
        self.push(Ev::ArrayTableOpen(Sp::of(span)));
    }
    fn std_table_close(&mut self, span: Span, _error: &mut dyn ErrorSink) {
        self.push(Ev::StdTableClose(Sp::of(span)));
    }
    fn array_table_close(&mut self, span: Span, _error: &mut dyn ErrorSink) {
        self.push(Ev::ArrayTableClose(Sp::of(span)));
    }
    fn inline_table_open(&mut self, span: Span, _error: &mut dyn ErrorSink) -> bool {
        self.push(Ev::InlineTableOpen(Sp::of(span)));
        true
    }
    fn inline_table_close(&mut self, span: Span, _error: &mut dyn ErrorSink) {
        self.push(Ev::InlineTableClose(Sp::of(span)));
    }
    fn array_open(&mut self, span: Span, _error: &mut dyn ErrorSink) -> bool {
        self.push(Ev::ArrayOpen(Sp::of(span)));
        true
    }
    fn array_close(&mut self, span: Span, _error: &mut dyn ErrorSink) {
        self.push(Ev::ArrayClose(Sp::of(span)));
    }
    fn simple_key(&mut self, span: Span, encoding: Option<Encoding>, error: &mut dyn ErrorSink) {
        let mut text: Cow<'s, str> = Cow::Borrowed("");
        if let Some(raw) = self.raw(span, encoding) {
            raw.decode_key(&mut text, error);
        }
        self.push(Ev::Key(Key { text, span: Sp::of(span) }));
    }
    fn key_val_sep(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        self.push(Ev::KeyValSep);
    }
    fn scalar(&mut self, span: Span, encoding: Option<Encoding>, error: &mut dyn ErrorSink) {
        let Some(raw) = self.raw(span, encoding) else { return };
        let mut out: Cow<'s, str> = Cow::Borrowed("");
        let kind = raw.decode_scalar(&mut out, error);
        let val = match kind {
            ScalarKind::String => Scalar::Str(out),
            ScalarKind::Boolean(b) => Scalar::Bool(b),
            ScalarKind::DateTime => {
                if let Err(e) = out.parse::<toml::value::Datetime>() {
                    error.report_error(ParseError::new(format!("invalid date-time: {e}")).with_unexpected(span));
                }
                Scalar::Datetime
            }
            ScalarKind::Float => match out.parse::<f64>() {
                Ok(f) => Scalar::Float(f),
                Err(_) => {
                    error.report_error(ParseError::new("invalid float").with_unexpected(span));
                    Scalar::Float(0.0)
                }
            },
            ScalarKind::Integer(radix) => match i64::from_str_radix(&out, radix.value()) {
                Ok(i) => Scalar::Int(i),
                Err(_) => {
                    error.report_error(
                        ParseError::new("integer out of range (a 64-bit signed integer)").with_unexpected(span),
                    );
                    Scalar::Int(0)
                }
            },
        };
        self.push(Ev::Scalar(Sp::of(span), val));
    }
    fn newline(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        self.push(Ev::Newline);
    }
}

impl<'s> Builder<'s> {
    /// Apply one chunk of events (draining it).
    fn apply(&mut self, events: &mut Vec<Ev<'s>>, errors: &mut Vec<ParseError>) {
        for ev in events.drain(..) {
            match ev {
                Ev::StdTableOpen(sp) => self.table_open(false, sp),
                Ev::ArrayTableOpen(sp) => self.table_open(true, sp),
                Ev::StdTableClose(sp) | Ev::ArrayTableClose(sp) => {
                    if let Some(h) = self.header.take() {
                        self.apply_header(h, sp);
                    }
                }
                Ev::InlineTableOpen(sp) => {
                    let node = self.new_table(Origin::Inline, sp);
                    self.frames.push(Frame::Inline { node, keys: Keys::new(), pending: None });
                }
                Ev::InlineTableClose(sp) => {
                    if let Some(Frame::Inline { node, .. }) = self.frames.last() {
                        let node = *node;
                        self.frames.pop();
                        if let Some(n) = self.doc.nodes.get_mut(node as usize) {
                            n.span.end = sp.end;
                        }
                        self.shrink(node);
                        self.complete(node);
                    }
                }
                Ev::ArrayOpen(sp) => {
                    let node = self.new_array(false, sp);
                    self.frames.push(Frame::Array { node });
                }
                Ev::ArrayClose(sp) => {
                    if let Some(Frame::Array { node, .. }) = self.frames.last() {
                        let node = *node;
                        self.frames.pop();
                        if let Some(n) = self.doc.nodes.get_mut(node as usize) {
                            n.span.end = sp.end;
                        }
                        self.complete(node);
                    }
                }
                Ev::Key(key) => {
                    if let Some(h) = &mut self.header {
                        h.keys.push(key);
                    } else if let Some(Frame::Inline { keys, .. }) = self.frames.last_mut() {
                        keys.push(key);
                    } else if self.frames.is_empty() {
                        self.keys.push(key);
                    }
                }
                Ev::KeyValSep => match self.frames.last_mut() {
                    Some(Frame::Inline { keys, pending, .. }) => *pending = Some(std::mem::take(keys)),
                    Some(Frame::Array { .. }) => {}
                    None => self.pending = Some(std::mem::take(&mut self.keys)),
                },
                Ev::Scalar(sp, val) => {
                    let val = match val {
                        Scalar::Str(s) => Val::Str(self.make_str(s)),
                        Scalar::Int(i) => Val::Int(i),
                        Scalar::Float(f) => Val::Float(f),
                        Scalar::Bool(b) => Val::Bool(b),
                        Scalar::Datetime => Val::Datetime,
                    };
                    let node = self.push_node(sp, val);
                    self.complete(node);
                }
                Ev::Newline => {
                    if self.frames.is_empty() {
                        self.keys.clear();
                        self.pending = None;
                    }
                }
                Ev::Error(e) => errors.push(*e),
                Ev::EndOfChunk => self.end_of_chunk(),
            }
        }
    }

    fn table_open(&mut self, is_array: bool, open: Sp) {
        self.frames.clear();
        self.keys.clear();
        self.pending = None;
        self.header = Some(Header { is_array, open, keys: Keys::new() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(doc: &Doc<'_>, keys: &[&str]) -> Option<NodeId> {
        let mut n = ROOT;
        for k in keys {
            n = doc.get(n, k)?.value;
        }
        Some(n)
    }

    fn ok(src: &str) -> Doc<'_> {
        let (doc, syntax, diags) = Doc::parse(src);
        assert!(syntax.is_empty(), "{syntax:?}");
        assert!(diags.is_empty(), "{diags:?}");
        doc
    }

    #[test]
    fn tables_dotted_keys_and_arrays_of_tables() {
        let doc = ok(
            "tasks.a.plugin = \"x\"\n[b.c]\nv = 1\n[b]\nw = 'lit'\n[[arr]]\nk = 1\n[[arr]]\nk = 2\n[t]\n\"q\\tk\" = { i = [1, 2.5, true] }\n",
        );
        let p = path(&doc, &["tasks", "a", "plugin"]).unwrap();
        assert!(matches!(doc.node(p).val, Val::Str(s) if doc.str(s) == "x"));
        assert!(matches!(doc.node(path(&doc, &["b", "c", "v"]).unwrap()).val, Val::Int(1)));
        assert!(matches!(doc.node(path(&doc, &["b", "w"]).unwrap()).val, Val::Str(s) if doc.str(s) == "lit"));
        let arr = path(&doc, &["arr"]).unwrap();
        assert_eq!(doc.items(arr).len(), 2);
        assert!(matches!(doc.node(doc.get(doc.items(arr)[1], "k").unwrap().value).val, Val::Int(2)));
        let i = path(&doc, &["t", "q\tk", "i"]).unwrap();
        assert_eq!(doc.items(i).len(), 3);
    }

    #[test]
    fn duplicates_are_reported_and_dropped() {
        let (doc, syntax, diags) = Doc::parse("[a]\nx = 1\nx = 2\n[a]\n[c]\nt = { i = 1 }\n[c.t]\n");
        assert!(syntax.is_empty());
        let msgs: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            msgs,
            ["`a.x` is defined more than once", "`a` is defined more than once", "`c.t` is defined more than once"]
        );
        assert!(matches!(doc.node(path(&doc, &["a", "x"]).unwrap()).val, Val::Int(1)));
    }

    #[test]
    fn large_tables_use_the_index_and_chunks_split_cleanly() {
        let mut src = String::new();
        for i in 0..20_000 {
            src.push_str(&format!("[tasks.t{i}]\nplugin = \"p\"\n"));
        }
        // A multi-line array that crosses chunk boundaries.
        src.push_str("[tail]\nlist = [\n");
        for i in 0..40_000 {
            src.push_str(&format!("  {i},\n"));
        }
        src.push_str("]\n");
        let doc = ok(&src);
        assert!(path(&doc, &["tasks", "t19999", "plugin"]).is_some());
        assert!(path(&doc, &["tasks", "t20000"]).is_none());
        assert_eq!(doc.items(path(&doc, &["tail", "list"]).unwrap()).len(), 40_000);
    }

    #[test]
    fn a_large_file_parses_the_same_on_one_or_two_threads() {
        // Over PARALLEL_PARSE_BYTES and many chunks, with syntax errors, decode
        // errors and duplicates in several chunks.
        let mut src = String::new();
        for i in 0..40_000 {
            src.push_str(&format!("[tasks.t{i}]\nplugin = \"p\"\ninputs = {{ a = \"t{}\", b = [1, 2] }}\n", i / 2));
            match i % 9_000 {
                100 => src.push_str("x = 99999999999999999999\n"),
                200 => src.push_str("plugin = \"again\"\n"),
                300 => src.push_str("y = [1,,2]\n"),
                400 => src.push_str("[tasks.t5]\n"),
                _ => {}
            }
        }
        assert!(src.len() > PARALLEL_PARSE_BYTES);
        let show = |(doc, syntax, diags): (Doc<'_>, Vec<SyntaxError>, Vec<Diagnostic>)| {
            let syntax: Vec<String> =
                syntax.iter().map(|e| format!("{} {:?} {}", e.message, e.span, e.label)).collect();
            let tasks = path(&doc, &["tasks"]).map(|t| doc.entries(t).len());
            (syntax, diags, tasks, doc.nodes.len())
        };
        let one = show(Doc::parse_with(&src, Threads::One));
        let two = show(Doc::parse_with(&src, Threads::Auto));
        assert_eq!((one.0.len(), one.1.len(), one.2), (5 * 2, 5 * 2, Some(40_000)), "{:?}", one.0.first());
        assert!(one == two, "the two parses differ");
    }

    #[test]
    fn syntax_errors_never_panic() {
        for src in [
            "[",
            "a = [1,",
            "a = {",
            "]]",
            "a.=1",
            "[[a]\n",
            "a = 1979-13-45",
            "a = 0x",
            "\u{feff}a=1",
            "a = 99999999999999999999",
        ] {
            let (_doc, syntax, _diags) = Doc::parse(src);
            if src != "\u{feff}a=1" {
                assert!(!syntax.is_empty(), "{src:?} parsed without error");
            }
        }
    }
}
