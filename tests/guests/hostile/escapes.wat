;; SDK task whose metadata, log and error message hold terminal control
;; sequences (ESC, BEL, CR, an OSC 52 clipboard write, a title change and a
;; forged summary line); it logs, then fails. The CLI must print all of it
;; escaped; the report keeps the exact bytes.
(module
  (import "engine" "log" (func $log (param i32 i32 i32)))
  (import "engine" "error" (func $error (param i32 i32)))
  (memory (export "memory") 1)
  ;; 45 bytes
  (data (i32.const 0) "\1b]52;c;cHduZWQ=\07clip\0d\nsucceeded: forged\1b[2J\c2\9b")
  ;; 39 bytes
  (data (i32.const 100) "bad \1b]0;pwned\07 title\0dsucceeded: 2 tasks")
  (func (export "engine_abi_v1"))
  (func (export "run") (result i32)
    (call $log (i32.const 2) (i32.const 0) (i32.const 45))
    (call $error (i32.const 100) (i32.const 39))
    (i32.const 1))
  (@custom "engine.task" "{\"abi\":1,\"name\":\"esc\\u001b[31m\",\"version\":\"1\\u0007\",\"description\":\"title \\u001b]0;pwned\\u0007 \\r done\",\"outputs\":[\"out\\u001b\"]}"))
