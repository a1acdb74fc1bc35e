#![no_main]
//! Fuzz target `canonical_json`: see hallmark_fuzz_targets::canonical_json.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hallmark_fuzz_targets::canonical_json(data));
