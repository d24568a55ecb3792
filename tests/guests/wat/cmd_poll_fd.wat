;; WASI command: poll_oneoff with two subscriptions (a 1 s relative clock and
;; fd_write readiness of stdout), answered by the engine's own poll_oneoff
;; (docs/abi.md, "poll_oneoff"). Exits with 100 + errno if the call
;; fails, else with the userdata (2) of the first event: stdout is writable
;; at once, so the clock never fires.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $r i32)
    ;; subscription 0 at 0: userdata 1, tag 0 (clock), id 1 (monotonic), timeout 1e9 ns
    (i64.store (i32.const 0) (i64.const 1))
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 1000000000))
    ;; subscription 1 at 48: userdata 2, tag 2 (fd_write), fd 1
    (i64.store (i32.const 48) (i64.const 2))
    (i32.store8 (i32.const 56) (i32.const 2))
    (i32.store (i32.const 64) (i32.const 1))
    (local.set $r (call $poll (i32.const 0) (i32.const 200) (i32.const 2) (i32.const 300)))
    (if (local.get $r) (then (call $proc_exit (i32.add (i32.const 100) (local.get $r)))))
    (call $proc_exit (i32.wrap_i64 (i64.load (i32.const 200))))))
