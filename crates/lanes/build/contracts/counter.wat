;; A counter contract in WebAssembly text: the source the devnet and tests ship, rebuilt by
;; the build lane's `wat` image (wabt's wat2wasm) into the wasm they publish.
(module
  (global $count (mut i64) (i64.const 0))
  (func (export "increment") (param $by i64) (result i64)
    global.get $count
    local.get $by
    i64.add
    global.set $count
    global.get $count)
  (func (export "get") (result i64)
    global.get $count))
