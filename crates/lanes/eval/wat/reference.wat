;; The eval lane's reference: the wrapping sum of the squares of the corpus words the
;; input names. Every validator grades every submission against this module's own run.
(module
  (import "hallmark" "input_len" (func $input_len (result i32)))
  (import "hallmark" "input_read" (func $input_read (param i32)))
  (import "hallmark" "corpus" (func $corpus (param i32) (result i64)))
  (import "hallmark" "output" (func $output (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "run")
    (local $n i32) (local $i i32) (local $acc i64) (local $w i64)
    (local.set $n (call $input_len))
    (call $input_read (i32.const 64))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $w (call $corpus (i32.load (i32.add (i32.const 64) (local.get $i)))))
        (local.set $acc (i64.add (local.get $acc) (i64.mul (local.get $w) (local.get $w))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $next)))
    (i64.store (i32.const 0) (local.get $acc))
    (call $output (i32.const 0) (i32.const 8))))
