;; SDK task that calls WASI `proc_exit(1)`.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32) (call $proc_exit (i32.const 1)) (i32.const 0)))
