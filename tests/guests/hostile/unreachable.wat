;; SDK task that executes `unreachable`.
(module
  (memory (export "memory") 1)
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32) unreachable))
