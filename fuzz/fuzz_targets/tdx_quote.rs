#![no_main]
//! Fuzz target `tdx_quote`: see hallmark_fuzz_targets::tdx_quote.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hallmark_fuzz_targets::tdx_quote(data));
