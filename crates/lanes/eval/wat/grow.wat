;; Escape attempt: grows memory without bound. The memory cap ends it (memory_limit).
(module
  (memory (export "memory") 1)
  (func (export "run")
    (loop $more
      (drop (memory.grow (i32.const 16)))
      (br $more))))
