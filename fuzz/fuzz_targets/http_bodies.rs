#![no_main]
//! Fuzz target `http_bodies`: see hallmark_fuzz_targets::http_bodies.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hallmark_fuzz_targets::http_bodies(data));
