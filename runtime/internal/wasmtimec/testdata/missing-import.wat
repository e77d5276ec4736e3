;; A WASI command component that imports an interface no host provides.
(component
  (import "wasilet:test/missing@0.1.0" (instance $missing
    (export "ping" (func))))
  (core func $ping (canon lower (func $missing "ping")))
  (core module $m
    (import "host" "ping" (func $ping))
    (func (export "run") (result i32) call $ping i32.const 0))
  (core instance $host (export "ping" (func $ping)))
  (core instance $i (instantiate $m (with "host" (instance $host))))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $cli (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $cli)))
