;; SDK task that recurses without bound.
(module
  (memory (export "memory") 1)
  (func $f (param i64) (result i64) (i64.add (call $f (i64.add (local.get 0) (i64.const 1))) (local.get 0)))
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32) (i32.wrap_i64 (call $f (i64.const 0)))))
