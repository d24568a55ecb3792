;; SDK task that grows its memory 64 MiB at a time towards 4 GiB, touching
;; every new region, and succeeds only if it got all of it.
(module
  (memory (export "memory") 1)
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32)
    (local $pages i32)
    (loop $more
      (if (i32.eq (memory.grow (i32.const 1024)) (i32.const -1))
        (then (return (i32.const 1))))
      (i32.store (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 4)) (i32.const 1))
      (br_if $more (i32.lt_u (memory.size) (i32.const 65535))))
    (i32.const 0)))
