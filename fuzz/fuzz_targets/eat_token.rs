#![no_main]
//! Fuzz target `eat_token`: see hallmark_fuzz_targets::eat_token.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hallmark_fuzz_targets::eat_token(data));
