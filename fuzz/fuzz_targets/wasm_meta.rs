#![no_main]
//! Fuzz target `wasm_meta`: see hallmark_fuzz_targets::wasm_meta.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hallmark_fuzz_targets::wasm_meta(data));
