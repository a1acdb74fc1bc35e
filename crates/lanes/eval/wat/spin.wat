;; Escape attempt: never returns. Fuel ends it (out_of_fuel).
(module
  (memory (export "memory") 1)
  (func (export "run")
    (loop $forever (br $forever))))
