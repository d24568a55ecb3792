;; Command that writes 64 MiB to stdout (the task log) 30 times with
;; `fd_write`. Run with a small `fuel`: the write is charged by the bytes it
;; moves (docs/abi.md, "Fuel"), so the first one fails the task.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1025)
  ;; iovec at 16: buf 65536, len 64 MiB
  (data (i32.const 16) "\00\00\01\00\00\00\00\04")
  (func (export "_start")
    (local $i i32)
    (loop $more
      (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 32)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 30))))))
