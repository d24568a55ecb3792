;; Reads input 0 at offset 1000 (past its end) and at offset 0, and a
;; missing item 7; writes the three results as little-endian i32s to `out`.
(module
  (import "engine" "input_read" (func $input_read (param i32 i64 i32 i32) (result i32)))
  (import "engine" "output_open" (func $output_open (param i32 i32) (result i32)))
  (import "engine" "output_write" (func $output_write (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "out")
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32)
    (i32.store (i32.const 100) (call $input_read (i32.const 0) (i64.const 1000) (i32.const 200) (i32.const 16)))
    (i32.store (i32.const 104) (call $input_read (i32.const 0) (i64.const 0) (i32.const 200) (i32.const 16)))
    (i32.store (i32.const 108) (call $input_read (i32.const 7) (i64.const 0) (i32.const 200) (i32.const 16)))
    (drop (call $output_write (call $output_open (i32.const 0) (i32.const 3)) (i32.const 100) (i32.const 12)))
    (i32.const 0)))
