#![no_main]
//! Fuzz target `dimacs`: see hallmark_fuzz_targets::dimacs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hallmark_fuzz_targets::dimacs(data));
