#![no_main]
//! Fuzz target `tdx_collateral`: see hallmark_fuzz_targets::tdx_collateral.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hallmark_fuzz_targets::tdx_collateral(data));
