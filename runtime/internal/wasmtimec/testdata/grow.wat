;; A WASI command component that grows its memory from 64 KiB to about
;; 32 MiB, 1 MiB (16 pages) at a time. run returns ok when all growth
;; succeeded and err as soon as memory.grow fails: under a memory limit the
;; store's limiter refuses growth inside the guest instead of killing it.
(component
  (core module $m
    (memory 1)
    (func (export "run") (result i32)
      (local $i i32)
      (loop $l
        (if (i32.eq (memory.grow (i32.const 16)) (i32.const -1))
          (then (return (i32.const 1))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const 31))))
      i32.const 0))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $cli (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $cli)))
