;; The benchmark's no-op SDK task (guest ABI v1, see docs/abi.md).
;;
;; It reads none of its inputs, opens its default output `out` and writes
;; nothing to it (an empty blob), and succeeds. Opening `out` matters: the
;; benchmark graphs wire every task's inputs to its upstream tasks' `out`, and
;; a reference to an output a task never produced fails the consumer.
;; bench/run.sh converts it to bench/noop.wasm (bench/wat2wasm.py).
(module
  (import "engine" "output_open" (func $output_open (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "out")
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32)
    ;; a negative handle means the host refused the output: fail the task
    (if (i32.lt_s (call $output_open (i32.const 16) (i32.const 3)) (i32.const 0))
      (then (return (i32.const 1))))
    (i32.const 0)))
