;; SDK task whose `output_write` pointer + length overflows 32 bits.
(module
  (import "engine" "output_open" (func $output_open (param i32 i32) (result i32)))
  (import "engine" "output_write" (func $output_write (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "out")
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32)
    (call $output_write (call $output_open (i32.const 0) (i32.const 3)) (i32.const 0xfffffff0) (i32.const 0x20))))
