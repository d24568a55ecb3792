;; Opens an output whose name is not valid UTF-8.
(module
  (import "engine" "output_open" (func $output_open (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "a\ff\fe")
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32)
    (drop (call $output_open (i32.const 0) (i32.const 3)))
    (i32.const 0)))
