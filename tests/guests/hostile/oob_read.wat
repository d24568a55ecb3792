;; SDK task passing `input_read` a buffer that ends past its 1-page memory.
(module
  (import "engine" "input_read" (func $input_read (param i32 i64 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32)
    (call $input_read (i32.const 0) (i64.const 0) (i32.const 65535) (i32.const 2))))
