;; Grows memory by 2000 pages (125 MiB).
(module
  (memory (export "memory") 1)
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32)
    (drop (memory.grow (i32.const 2000)))
    (i32.const 0)))
