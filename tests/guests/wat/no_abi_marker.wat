(module
  (import "engine" "input_count" (func (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (result i32) (i32.const 0)))
