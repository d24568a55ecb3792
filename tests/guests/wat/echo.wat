;; Copies input item 0 to output `out` in 1000-byte chunks, then logs.
;; With no inputs it writes nothing (but still opens `out`).
(module
  (import "engine" "input_count" (func $input_count (result i32)))
  (import "engine" "input_read" (func $input_read (param i32 i64 i32 i32) (result i32)))
  (import "engine" "output_open" (func $output_open (param i32 i32) (result i32)))
  (import "engine" "output_write" (func $output_write (param i32 i32 i32) (result i32)))
  (import "engine" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "out")
  (data (i32.const 16) "echo done")
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32)
    (local $h i32) (local $off i64) (local $n i32)
    (local.set $h (call $output_open (i32.const 0) (i32.const 3)))
    (if (i32.eqz (call $input_count)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (local.set $n (call $input_read (i32.const 0) (local.get $off) (i32.const 1024) (i32.const 1000)))
        (br_if $done (i32.le_s (local.get $n) (i32.const 0)))
        (drop (call $output_write (local.get $h) (i32.const 1024) (local.get $n)))
        (local.set $off (i64.add (local.get $off) (i64.extend_i32_u (local.get $n))))
        (br $next)))
    (call $log (i32.const 2) (i32.const 16) (i32.const 9))
    (i32.const 0)))
