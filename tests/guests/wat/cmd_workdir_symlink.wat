;; WASI command for a task with a workdir and no scratch or mounts (so the
;; workdir is preopened fd 5, after /in and /out): creates the symlink
;; `link.hex` -> `real.hex` in it, writes nothing else, exits 0.
(module
  (import "wasi_snapshot_preview1" "path_symlink" (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "real.hex")
  (data (i32.const 110) "link.hex")
  (func (export "_start")
    (call $proc_exit (call $path_symlink (i32.const 100) (i32.const 8) (i32.const 5) (i32.const 110) (i32.const 8)))))
