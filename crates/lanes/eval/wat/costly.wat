;; Correct and costly: keeps its running sum in the key-value tool and squares each word by
;; repeated addition over the low 12 bits plus a multiply, burning fuel on the way.
(module
  (import "hallmark" "input_len" (func $input_len (result i32)))
  (import "hallmark" "input_read" (func $input_read (param i32)))
  (import "hallmark" "corpus" (func $corpus (param i32) (result i64)))
  (import "hallmark" "output" (func $output (param i32 i32)))
  (import "hallmark" "kv_get" (func $kv_get (param i32 i32) (result i64)))
  (import "hallmark" "kv_put" (func $kv_put (param i32 i32 i64)))
  (memory (export "memory") 1)
  (data (i32.const 16) "running-sum")
  (func (export "run")
    (local $p i32) (local $end i32) (local $w i64) (local $sq i64) (local $k i64)
    (local.set $p (i32.const 64))
    (local.set $end (i32.add (i32.const 64) (call $input_len)))
    (call $input_read (i32.const 64))
    (call $kv_put (i32.const 16) (i32.const 11) (i64.const 0))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $w (call $corpus (i32.load (local.get $p))))
        ;; sq = w * w, computed as w * (w - r) + w * r with r = w & 0xff added r times.
        (local.set $sq (i64.mul (local.get $w) (i64.sub (local.get $w) (i64.and (local.get $w) (i64.const 255)))))
        (local.set $k (i64.and (local.get $w) (i64.const 255)))
        (block $added
          (loop $add
            (br_if $added (i64.eqz (local.get $k)))
            (local.set $sq (i64.add (local.get $sq) (local.get $w)))
            (local.set $k (i64.sub (local.get $k) (i64.const 1)))
            (br $add)))
        (call $kv_put (i32.const 16) (i32.const 11)
          (i64.add (call $kv_get (i32.const 16) (i32.const 11)) (local.get $sq)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $next)))
    (i64.store (i32.const 0) (call $kv_get (i32.const 16) (i32.const 11)))
    (call $output (i32.const 0) (i32.const 8))))
