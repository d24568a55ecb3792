;; An SDK task with task metadata, for `engine inspect`.
(module
  (import "engine" "input_read" (func (param i32 i64 i32 i32) (result i32)))
  (import "engine" "output_open" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32) (i32.const 0))
  (@custom "engine.task" "{\"abi\":1,\"name\":\"wordcount\",\"version\":\"0.1.0\",\"description\":\"counts words\",\"inputs\":[\"text\"],\"outputs\":[\"out\"],\"params\":[\"lowercase\",\"min_len\"]}"))
