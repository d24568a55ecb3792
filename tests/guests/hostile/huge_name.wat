;; SDK task opening an output whose name is 1 MiB of `a`.
(module
  (import "engine" "output_open" (func $output_open (param i32 i32) (result i32)))
  (memory (export "memory") 17)
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32)
    (memory.fill (i32.const 0) (i32.const 97) (i32.const 1048576))
    (drop (call $output_open (i32.const 0) (i32.const 1048576)))
    (i32.const 0)))
