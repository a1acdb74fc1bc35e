;; Correct and cheap: one corpus lookup per item, nothing else.
(module
  (import "hallmark" "input_len" (func $input_len (result i32)))
  (import "hallmark" "input_read" (func $input_read (param i32)))
  (import "hallmark" "corpus" (func $corpus (param i32) (result i64)))
  (import "hallmark" "output" (func $output (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "run")
    (local $p i32) (local $end i32) (local $acc i64) (local $w i64)
    (local.set $p (i32.const 64))
    (local.set $end (i32.add (i32.const 64) (call $input_len)))
    (call $input_read (i32.const 64))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $w (call $corpus (i32.load (local.get $p))))
        (local.set $acc (i64.add (local.get $acc) (i64.mul (local.get $w) (local.get $w))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $next)))
    (i64.store (i32.const 0) (local.get $acc))
    (call $output (i32.const 0) (i32.const 8))))
