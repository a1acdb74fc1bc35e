#![no_main]
//! Fuzz target `witness`: see hallmark_fuzz_targets::witness.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hallmark_fuzz_targets::witness(data));
