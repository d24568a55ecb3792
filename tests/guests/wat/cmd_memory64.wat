;; A WASI command with a 64-bit memory: the memory64 proposal, which the
;; engine does not enable.
(module
  (memory (export "memory") i64 1)
  (func (export "_start")))
