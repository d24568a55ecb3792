//! engine.zig: write `engine` task plugins in Zig (guest ABI v1, docs/abi.md).
//!
//! One file, no dependencies beyond `std`. A plugin is a wasm32 reactor that
//! calls `engine.task(meta, run)` once in a `comptime` block; that exports
//! `run` and `engine_abi_v1` and embeds the `engine.task` metadata section.
//!
//!     const std = @import("std");
//!     const engine = @import("engine");
//!
//!     fn upper(ctx: *engine.Context) !void {
//!         var in = try ctx.input("text");
//!         var out = ctx.output("out");
//!         var buf: [4096]u8 = undefined;
//!         while (true) {
//!             const n = try in.read(&buf);
//!             if (n == 0) break;
//!             for (buf[0..n]) |*c| c.* = std.ascii.toUpper(c.*);
//!             try out.write(buf[0..n]);
//!         }
//!         try out.finish();
//!     }
//!
//!     comptime {
//!         engine.task(.{ .name = "upper", .version = "0.1.0", .description = "uppercase",
//!             .inputs = &.{"text"}, .outputs = &.{"out"}, .params = &.{} }, upper);
//!     }
//!
//! Build (Zig 0.17, PyPI `ziglang`):
//!
//!     python -m ziglang build-exe -target wasm32-wasi -O ReleaseSmall -fno-entry \
//!         -rdynamic --dep engine -Mroot=upper.zig -Mengine=sdk/zig/engine.zig -femit-bin=upper.wasm
//!
//! The SDK never depends on the engine; it only speaks the ABI.

const std = @import("std");

/// The raw ABI: the functions a task imports from module `engine`.
pub const sys = struct {
    pub extern "engine" fn input_count() i32;
    pub extern "engine" fn input_name(item: i32, buf: [*]u8, buf_len: i32) i32;
    pub extern "engine" fn input_index(item: i32) i32;
    pub extern "engine" fn input_len(item: i32) i64;
    pub extern "engine" fn input_read(item: i32, offset: i64, buf: [*]u8, len: i32) i32;
    pub extern "engine" fn output_open(name: [*]const u8, name_len: i32) i32;
    pub extern "engine" fn output_write(handle: i32, buf: [*]const u8, len: i32) i32;
    pub extern "engine" fn params_len() i32;
    pub extern "engine" fn params_read(buf: [*]u8, len: i32) i32;
    pub extern "engine" fn log(level: i32, msg: [*]const u8, len: i32) void;
    pub extern "engine" fn @"error"(msg: [*]const u8, len: i32) void;
};

/// Size of the read buffer of `Input.readLine` and the write buffer of an `Output`.
pub const chunk = 64 * 1024;

/// The allocator plugins should use (wasm linear memory, grows on demand).
pub const allocator = std.heap.wasm_allocator;

// ---- Errors and logging --------------------------------------------------------

/// A task function's failure. `fail` records the message and returns this.
pub const Error = error{TaskFailed};

var failed_msg: bool = false;

/// Log levels, as the `log` host call numbers them.
pub const Level = enum(i32) { trace = 0, debug = 1, info = 2, warn = 3, err = 4 };

/// Append `[level] message` to the task log (`std.fmt` syntax, at most 1 KiB).
pub fn log(level: Level, comptime fmt: []const u8, args: anytype) void {
    var buf: [1024]u8 = undefined;
    const msg = std.fmt.bufPrint(&buf, fmt, args) catch buf[0..];
    sys.log(@intFromEnum(level), msg.ptr, @intCast(msg.len));
}

/// Record the task's error message (`std.fmt` syntax) and return
/// `error.TaskFailed`, so `return engine.fail("bad input: {s}", .{why});`
/// fails the task with exactly that message.
pub fn fail(comptime fmt: []const u8, args: anytype) Error {
    var buf: [1024]u8 = undefined;
    const msg = std.fmt.bufPrint(&buf, fmt, args) catch buf[0..];
    sys.@"error"(msg.ptr, @intCast(msg.len));
    failed_msg = true;
    return error.TaskFailed;
}

// ---- Inputs ------------------------------------------------------------------------

/// One readable input item: `read` fetches the next bytes from the host at
/// increasing offsets, so a blob never has to fit in memory.
pub const Input = struct {
    item: i32,
    /// Position within a list input; null for a scalar input.
    index: ?u32,
    /// Total length in bytes.
    len: u64,
    /// Offset of the next byte to read.
    pos: u64 = 0,

    /// Read up to `buf.len` bytes; 0 means the end of the input.
    pub fn read(self: *Input, buf: []u8) Error!usize {
        const want: i32 = @intCast(@min(buf.len, std.math.maxInt(i32)));
        const n = sys.input_read(self.item, @intCast(self.pos), buf.ptr, want);
        if (n < 0) return fail("host refused to read input item {d}", .{self.item});
        self.pos += @intCast(n);
        return @intCast(n);
    }

    /// The rest of the input in one allocation (the caller frees it).
    pub fn readAll(self: *Input, gpa: std.mem.Allocator) ![]u8 {
        const rest: usize = @intCast(self.len - self.pos);
        const buf = try gpa.alloc(u8, rest);
        var got: usize = 0;
        while (got < rest) {
            const n = try self.read(buf[got..]);
            if (n == 0) break;
            got += n;
        }
        return buf[0..got];
    }
};

// ---- Outputs -------------------------------------------------------------------------

/// A named output; bytes are buffered and handed to the host 64 KiB at a time.
/// Call `finish` at the end (an unflushed tail is lost otherwise).
pub const Output = struct {
    handle: i32,
    used: usize = 0,
    buf: [chunk]u8 = undefined,

    fn send(self: *Output, data: []const u8) Error!void {
        var rest = data;
        while (rest.len > 0) {
            const n = @min(rest.len, 1 << 30);
            if (sys.output_write(self.handle, rest.ptr, @intCast(n)) < 0)
                return fail("host refused to write output handle {d}", .{self.handle});
            rest = rest[n..];
        }
    }

    /// Append bytes.
    pub fn write(self: *Output, data: []const u8) Error!void {
        if (self.used + data.len > chunk) try self.flush();
        if (data.len >= chunk) return self.send(data);
        @memcpy(self.buf[self.used..][0..data.len], data);
        self.used += data.len;
    }

    /// Append formatted text (`std.fmt` syntax; one piece at most 4 KiB).
    pub fn print(self: *Output, comptime fmt: []const u8, args: anytype) Error!void {
        var tmp: [4096]u8 = undefined;
        const s = std.fmt.bufPrint(&tmp, fmt, args) catch return fail("output text longer than 4 KiB", .{});
        return self.write(s);
    }

    /// Hand buffered bytes to the host.
    pub fn flush(self: *Output) Error!void {
        if (self.used > 0) try self.send(self.buf[0..self.used]);
        self.used = 0;
    }

    /// Flush; the output is complete.
    pub fn finish(self: *Output) Error!void {
        return self.flush();
    }
};

// ---- The context -------------------------------------------------------------------------

/// What a running task sees: its input items, params and outputs.
pub const Context = struct {
    /// Find input item `name` with `index` (null = scalar).
    fn find(name: []const u8, index: ?u32) ?Input {
        var buf: [256]u8 = undefined;
        const count = sys.input_count();
        var item: i32 = 0;
        while (item < count) : (item += 1) {
            const n = sys.input_name(item, &buf, buf.len);
            if (n < 0 or n > buf.len or !std.mem.eql(u8, buf[0..@intCast(n)], name)) continue;
            const idx = sys.input_index(item);
            const got: ?u32 = if (idx >= 0) @intCast(idx) else null;
            if (got == index) return .{ .item = item, .index = got, .len = @intCast(@max(sys.input_len(item), 0)) };
        }
        return null;
    }

    /// The scalar input `name`; fails the task with ``missing input `name` ``
    /// if it was not given.
    pub fn input(self: *Context, name: []const u8) Error!Input {
        _ = self;
        if (find(name, null)) |i| return i;
        if (find(name, 0) != null) return fail("input `{s}` is a list; expected a single input", .{name});
        return fail("missing input `{s}`", .{name});
    }

    /// The scalar input `name`, or null when it was not given.
    pub fn inputOpt(self: *Context, name: []const u8) Error!?Input {
        _ = self;
        return find(name, null);
    }

    /// Item `index` of the list input `name` (0, 1, ...), or null past the
    /// end. A scalar input reads as a list of one.
    pub fn listItem(self: *Context, name: []const u8, index: u32) ?Input {
        _ = self;
        if (find(name, index)) |i| return i;
        if (index == 0) return find(name, null);
        return null;
    }

    /// The params JSON text as the host passed it (`{}` when empty).
    pub fn paramsJson(self: *Context, gpa: std.mem.Allocator) ![]const u8 {
        _ = self;
        const len: usize = @intCast(@max(sys.params_len(), 0));
        if (len == 0) return "{}";
        const buf = try gpa.alloc(u8, len);
        const n: usize = @intCast(@max(sys.params_read(buf.ptr, @intCast(len)), 0));
        if (std.mem.trim(u8, buf[0..n], " \t\r\n").len == 0) return "{}";
        return buf[0..n];
    }

    /// The params parsed into struct `T`, whose fields all have defaults
    /// (the value of an omitted param; use `?U = null` for a param without
    /// one). Fails the task with ``invalid params: unknown field `x`, expected
    /// one of `a`, `b` `` for an unknown param and ``param `x` must be <kind>``
    /// (an integer >= 0, a boolean, a string, ...) for a value of the wrong type.
    pub fn params(self: *Context, comptime T: type, gpa: std.mem.Allocator) !T {
        const json = try self.paramsJson(gpa);
        const root = std.json.parseFromSliceLeaky(std.json.Value, gpa, json, .{}) catch |e| switch (e) {
            error.OutOfMemory => return error.OutOfMemory,
            else => return fail("invalid params: not valid JSON ({s})", .{@errorName(e)}),
        };
        if (root != .object) return fail("invalid params: expected a JSON object", .{});
        const names = comptime std.meta.fieldNames(T);
        for (root.object.keys()) |key| {
            for (names) |n| {
                if (std.mem.eql(u8, n, key)) break;
            } else return fail("invalid params: unknown field `{s}`, expected one of {s}", .{ key, comptime fieldList(T) });
        }
        var out: T = .{};
        inline for (names) |n| {
            if (root.object.get(n)) |v| {
                @field(out, n) = std.json.parseFromValueLeaky(@FieldType(T, n), gpa, v, .{}) catch |e| switch (e) {
                    error.OutOfMemory => return error.OutOfMemory,
                    else => return fail("param `{s}` must be {s}", .{ n, comptime kindOf(@FieldType(T, n)) }),
                };
            }
        }
        return out;
    }

    /// Open output `name` (`out` is the default output). An invalid or
    /// duplicate name fails the task (the host traps).
    pub fn output(self: *Context, name: []const u8) Output {
        _ = self;
        return .{ .handle = sys.output_open(name.ptr, @intCast(name.len)) };
    }
};

/// How a param of type `T` is described in an error message.
fn kindOf(comptime T: type) []const u8 {
    return switch (@typeInfo(T)) {
        .bool => "a boolean",
        .int => |i| if (i.signedness == .unsigned) "an integer >= 0" else "an integer",
        .float => "a number",
        .optional => |o| kindOf(o.child),
        .pointer => if (T == []const u8) "a string" else "an array",
        .@"enum" => "one of " ++ fieldList(T),
        else => "a " ++ @typeName(T),
    };
}

fn fieldList(comptime T: type) []const u8 {
    comptime var s: []const u8 = "";
    inline for (std.meta.fieldNames(T), 0..) |f, i| {
        s = s ++ (if (i > 0) ", " else "") ++ "`" ++ f ++ "`";
    }
    return s;
}

// ---- Declaring the task ---------------------------------------------------------------

/// A task's self-description, embedded as the `engine.task` custom section.
pub const Meta = struct {
    name: []const u8,
    version: []const u8,
    description: []const u8 = "",
    inputs: []const []const u8,
    outputs: []const []const u8,
    /// null: params not declared (the engine accepts any); `&.{}`: takes none.
    params: ?[]const []const u8 = null,
};

fn jsonString(comptime s: []const u8) []const u8 {
    comptime var out: []const u8 = "\"";
    inline for (s) |c| {
        out = out ++ switch (c) {
            '"' => "\\\"",
            '\\' => "\\\\",
            0...0x1f => std.fmt.comptimePrint("\\u{x:0>4}", .{c}),
            else => &[_]u8{c},
        };
    }
    return out ++ "\"";
}

fn jsonArray(comptime items: []const []const u8) []const u8 {
    comptime var out: []const u8 = "[";
    inline for (items, 0..) |it, i| out = out ++ (if (i > 0) "," else "") ++ jsonString(it);
    return out ++ "]";
}

/// The `engine.task` JSON for `m` (computed at compile time).
pub fn metaJson(comptime m: Meta) []const u8 {
    comptime {
        var s: []const u8 = "{\"abi\":1,\"name\":" ++ jsonString(m.name) ++ ",\"version\":" ++ jsonString(m.version) ++
            ",\"description\":" ++ jsonString(m.description) ++ ",\"inputs\":" ++ jsonArray(m.inputs) ++
            ",\"outputs\":" ++ jsonArray(m.outputs);
        if (m.params) |p| s = s ++ ",\"params\":" ++ jsonArray(p);
        return s ++ "}";
    }
}

/// The same bytes as a `.ascii` directive argument (assembler string escapes).
fn asmString(comptime s: []const u8) []const u8 {
    comptime var out: []const u8 = "\"";
    inline for (s) |c| {
        out = out ++ switch (c) {
            '"' => "\\\"",
            '\\' => "\\\\",
            else => &[_]u8{c},
        };
    }
    return out ++ "\"";
}

/// Declare the task, in a `comptime` block: exports `run` (calling
/// `run_fn`, whose error fails the task) and `engine_abi_v1`, and embeds
/// the `engine.task` metadata section. Use once per plugin.
pub fn task(comptime meta: Meta, comptime run_fn: fn (*Context) anyerror!void) void {
    const S = struct {
        fn run() callconv(.c) i32 {
            var ctx: Context = .{};
            run_fn(&ctx) catch |e| {
                // `fail` already recorded the message; anything else is reported by name.
                if (!failed_msg) {
                    const name = @errorName(e);
                    sys.@"error"(name.ptr, @intCast(name.len));
                }
                return 1;
            };
            return 0;
        }
        fn abi() callconv(.c) void {}
    };
    @export(&S.run, .{ .name = "run" });
    @export(&S.abi, .{ .name = "engine_abi_v1" });
    _ = Section(metaJson(meta));
}

/// wasm-ld (and Zig's wasm linker) turn an object section named
/// `.custom_section.<name>` into the custom section `<name>`; global assembly
/// in a container's `comptime` block emits it.
fn Section(comptime json: []const u8) type {
    return struct {
        comptime {
            asm (".section .custom_section.engine.task,\"\",@\n" ++
                    ".ascii " ++ asmString(json) ++ "\n" ++
                    ".text\n");
        }
    };
}
