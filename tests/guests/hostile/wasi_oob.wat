;; Command passing WASI `fd_write` an iovec list that lies past its memory.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (call $proc_exit (call $fd_write (i32.const 2) (i32.const 0xfffffff8) (i32.const 1000) (i32.const 0)))))
