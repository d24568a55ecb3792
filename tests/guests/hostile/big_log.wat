;; SDK task that logs 1 GiB (1024 x 1 MiB lines), then writes `out` = "done\n".
(module
  (import "engine" "log" (func $log (param i32 i32 i32)))
  (import "engine" "output_open" (func $output_open (param i32 i32) (result i32)))
  (import "engine" "output_write" (func $output_write (param i32 i32 i32) (result i32)))
  (memory (export "memory") 17)
  (data (i32.const 0) "out")
  (data (i32.const 16) "done\n")
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32)
    (local $i i32)
    (memory.fill (i32.const 65536) (i32.const 120) (i32.const 1048576))
    (loop $more
      (call $log (i32.const 2) (i32.const 65536) (i32.const 1048576))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 1024))))
    (drop (call $output_write (call $output_open (i32.const 0) (i32.const 3)) (i32.const 16) (i32.const 5)))
    (i32.const 0)))
