;; SDK task importing a function the engine does not provide.
(module
  (import "env" "open_socket" (func $open_socket (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32) (call $open_socket (i32.const 0))))
