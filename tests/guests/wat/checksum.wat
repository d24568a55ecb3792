;; Streams input 0 through a 64 KiB buffer and writes the wrapping u64 sum of
;; its bytes (little-endian) to `out`. Uses 2 pages of memory whatever the input size.
(module
  (import "engine" "input_read" (func $input_read (param i32 i64 i32 i32) (result i32)))
  (import "engine" "output_open" (func $output_open (param i32 i32) (result i32)))
  (import "engine" "output_write" (func $output_write (param i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "out")
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32)
    (local $off i64) (local $n i32) (local $i i32) (local $sum i64)
    (block $done
      (loop $next
        (local.set $n (call $input_read (i32.const 0) (local.get $off) (i32.const 65536) (i32.const 65536)))
        (br_if $done (i32.le_s (local.get $n) (i32.const 0)))
        (local.set $i (i32.const 0))
        (loop $bytes
          (local.set $sum (i64.add (local.get $sum)
            (i64.load8_u (i32.add (i32.const 65536) (local.get $i)))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $bytes (i32.lt_u (local.get $i) (local.get $n))))
        (local.set $off (i64.add (local.get $off) (i64.extend_i32_u (local.get $n))))
        (br $next)))
    (i64.store (i32.const 8) (local.get $sum))
    (drop (call $output_write (call $output_open (i32.const 0) (i32.const 3)) (i32.const 8) (i32.const 8)))
    (i32.const 0)))
