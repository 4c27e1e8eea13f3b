;; Two guests at the extremes, for bench/meter-calls.mjs: `hash` is one loop of arithmetic (a
;; fuel charge a turn, no calls), `fib` is nothing but calls (each a frame and a fuel charge;
;; half of them to a leaf, a function that calls no other).
(module
  (memory (export "memory") 1)
  (func $hash (export "hash") (param $n i32) (result i32) (local $h i32)
    (local.set $h (i32.const 2166136261))
    (loop $l
      (local.set $h (i32.mul (i32.xor (local.get $h) (local.get $n)) (i32.const 16777619)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (local.get $n)))
    (local.get $h))
  (func $leaf (param $x i32) (result i32) (i32.add (local.get $x) (i32.const 1)))
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_s (local.get $n) (i32.const 2))
      (then (call $leaf (local.get $n)))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2))))))))
