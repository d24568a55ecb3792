;; SDK task that opens 3000 outputs, writes 60 KiB to each (just under the
;; local store's in-memory buffer of 64 KiB per writer), then 5 KiB more to
;; each (over it: one spill file per writer), then fails (`run` returns 1).
;; With a store writer per output the engine held 180 MiB and then 3000
;; descriptors; the spool holds at most 16 MiB and one spill file.
(module
  (import "engine" "output_open" (func $output_open (param i32 i32) (result i32)))
  (import "engine" "output_write" (func $output_write (param i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32)
    (local $i i32)
    (loop $open
      ;; name: two characters of the alphabet at 64
      (i32.store8 (i32.const 64) (i32.load8_u (i32.shr_u (local.get $i) (i32.const 6))))
      (i32.store8 (i32.const 65) (i32.load8_u (i32.and (local.get $i) (i32.const 63))))
      (drop (call $output_write (call $output_open (i32.const 64) (i32.const 2)) (i32.const 1024) (i32.const 61440)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $open (i32.lt_u (local.get $i) (i32.const 3000))))
    (local.set $i (i32.const 0))
    (loop $more
      (drop (call $output_write (local.get $i) (i32.const 1024) (i32.const 5120)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 3000))))
    (i32.const 1)))
