;; WASI command: creates /out/link -> target, exits 0.
(module
  (import "wasi_snapshot_preview1" "path_symlink" (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "target")
  (data (i32.const 110) "link")
  (func (export "_start")
    (call $proc_exit (call $path_symlink (i32.const 100) (i32.const 6) (i32.const 4) (i32.const 110) (i32.const 4)))))
