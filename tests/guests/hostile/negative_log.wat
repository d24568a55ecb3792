;; SDK task passing `log` a negative (huge unsigned) length.
(module
  (import "engine" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32) (call $log (i32.const 2) (i32.const 16) (i32.const -1)) (i32.const 0)))
