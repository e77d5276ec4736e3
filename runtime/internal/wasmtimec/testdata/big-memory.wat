;; A WASI command component whose core module starts with a 64 MiB memory
;; (1024 pages): instantiation fails under a smaller memory limit.
(component
  (core module $m
    (memory 1024)
    (func (export "run") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $cli (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $cli)))
