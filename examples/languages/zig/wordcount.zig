//! wordcount.zig: the word-count task in Zig, with sdk/zig/engine.zig.
//!
//! Counts the words of input `text` and writes `word<TAB>count` lines sorted
//! by word (byte order) to output `out`. A word is a maximal run of ASCII
//! letters and digits; every other byte (including each byte of a non-ASCII
//! character) separates words. Params: `lowercase` (bool, default true:
//! ASCII letters are lowercased) and `min_len` (integer >= 0, default 1).
//! On ASCII text the output is byte-identical to the stock `wordcount`.
const std = @import("std");
const engine = @import("engine");

const Params = struct {
    lowercase: bool = true,
    min_len: u64 = 1,
};

fn wordcount(ctx: *engine.Context) !void {
    const gpa = engine.allocator;
    const p = try ctx.params(Params, gpa);
    var in = try ctx.input("text");

    var counts: std.StringHashMapUnmanaged(u64) = .empty;
    var word: std.ArrayList(u8) = .empty;
    const buf = try gpa.alloc(u8, engine.chunk);
    while (true) {
        const n = try in.read(buf);
        // n == 0 (the end) flushes the last word.
        for (buf[0..n]) |c| {
            if (std.ascii.isAlphanumeric(c)) {
                try word.append(gpa, if (p.lowercase) std.ascii.toLower(c) else c);
            } else if (word.items.len > 0) {
                try add(gpa, &counts, word.items, p.min_len);
                word.clearRetainingCapacity();
            }
        }
        if (n == 0) break;
    }
    if (word.items.len > 0) try add(gpa, &counts, word.items, p.min_len);

    const words = try gpa.alloc([]const u8, counts.count());
    var it = counts.keyIterator();
    var i: usize = 0;
    while (it.next()) |k| : (i += 1) words[i] = k.*;
    std.mem.sort([]const u8, words, {}, struct {
        fn lt(_: void, a: []const u8, b: []const u8) bool {
            return std.mem.lessThan(u8, a, b);
        }
    }.lt);

    var out = ctx.output("out");
    for (words) |w| {
        try out.write(w);
        try out.print("\t{d}\n", .{counts.get(w).?});
    }
    try out.finish();
    engine.log(.info, "{d} distinct words", .{words.len});
}

fn add(gpa: std.mem.Allocator, counts: *std.StringHashMapUnmanaged(u64), w: []const u8, min_len: u64) !void {
    if (w.len < min_len) return;
    const e = try counts.getOrPut(gpa, w);
    if (e.found_existing) {
        e.value_ptr.* += 1;
    } else {
        e.key_ptr.* = try gpa.dupe(u8, w);
        e.value_ptr.* = 1;
    }
}

comptime {
    engine.task(.{
        .name = "zig_wordcount",
        .version = "0.1.0",
        .description = "count ASCII words (Zig SDK example)",
        .inputs = &.{"text"},
        .outputs = &.{"out"},
        .params = &.{ "lowercase", "min_len" },
    }, wordcount);
}
