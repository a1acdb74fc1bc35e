;; Escape attempt: reads the host clock and randomness through WASI, which this lane does not
;; offer. Instantiation must fail with unknown_import.
(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "hallmark" "output" (func $output (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "run")
    (drop (call $clock (i32.const 0) (i64.const 1) (i32.const 0)))
    (call $output (i32.const 0) (i32.const 8))))
