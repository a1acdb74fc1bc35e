#![no_main]
//! Fuzz target `stark_package`: see hallmark_fuzz_targets::stark_package.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hallmark_fuzz_targets::stark_package(data));
