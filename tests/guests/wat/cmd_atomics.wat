;; A WASI command that uses atomic instructions on a non-shared memory (as
;; toolchains emit with the atomics feature on): accepted. Exits with the
;; value it read back, 42.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.atomic.store (i32.const 16) (i32.const 41))
    (drop (i32.atomic.rmw.add (i32.const 16) (i32.const 1)))
    (call $proc_exit (i32.atomic.load (i32.const 16)))))
