;; WASI command: writes the realtime clock (u64 ns), the monotonic clock and
;; 8 random bytes to stdout (24 bytes).
(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 104)))
    (drop (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 112)))
    (drop (call $random_get (i32.const 120) (i32.const 8)))
    (i32.store (i32.const 0) (i32.const 104)) (i32.store (i32.const 4) (i32.const 24))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
