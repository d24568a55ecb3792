;; SDK task that never returns (stopped by `timeout` or `fuel`).
(module
  (memory (export "memory") 1)
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))
