;; A WASI command with a shared memory (threads), which the engine refuses.
(module
  (memory (export "memory") 1 1 shared)
  (func (export "_start")))
