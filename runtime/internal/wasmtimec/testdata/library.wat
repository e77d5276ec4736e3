;; A component that exports no wasi:cli/run: not a command.
(component
  (core module $m
    (func (export "f") (result i32) i32.const 7))
  (core instance $i (instantiate $m))
  (func $f (result u32) (canon lift (core func $i "f")))
  (export "f" (func $f)))
