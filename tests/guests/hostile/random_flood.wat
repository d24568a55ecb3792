;; Command that asks `random_get` for 64 MiB, 30 times (2 GiB of random bytes
;; made by the host). Run with a small `fuel`: the host call is charged by the
;; bytes it moves (docs/abi.md, "Fuel"), so the first call fails the task.
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (memory (export "memory") 1025)
  (func (export "_start")
    (local $i i32)
    (loop $more
      (drop (call $random_get (i32.const 65536) (i32.const 67108864)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 30))))))
