;; A WASI command that needs the exception-handling proposal (final, exnref
;; form): it throws a tag carrying 7, catches it in the same function and
;; exits with the caught value.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (tag $boom (param i32))
  (func $thrower (param i32)
    (throw $boom (local.get 0)))
  (func (export "_start")
    (block $caught (result i32)
      (try_table (catch $boom $caught)
        (call $thrower (i32.const 7)))
      (i32.const 0))
    (call $proc_exit)))
