;; SDK task that writes 10 GiB (10240 x 1 MiB) to output `out`.
(module
  (import "engine" "output_open" (func $output_open (param i32 i32) (result i32)))
  (import "engine" "output_write" (func $output_write (param i32 i32 i32) (result i32)))
  (memory (export "memory") 17)
  (data (i32.const 0) "out")
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32)
    (local $h i32) (local $i i32)
    (local.set $h (call $output_open (i32.const 0) (i32.const 3)))
    (loop $more
      (drop (call $output_write (local.get $h) (i32.const 65536) (i32.const 1048576)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 10240))))
    (i32.const 0)))
