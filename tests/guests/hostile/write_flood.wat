;; SDK task that writes 64 MiB to output `out` 30 times. Run with a small
;; `fuel`: `output_write` is charged by the bytes it moves (docs/abi.md,
;; "Fuel"), so the first write fails the task.
(module
  (import "engine" "output_open" (func $output_open (param i32 i32) (result i32)))
  (import "engine" "output_write" (func $output_write (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1025)
  (data (i32.const 0) "out")
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32)
    (local $h i32) (local $i i32)
    (local.set $h (call $output_open (i32.const 0) (i32.const 3)))
    (loop $more
      (drop (call $output_write (local.get $h) (i32.const 65536) (i32.const 67108864)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 30))))
    (i32.const 0)))
