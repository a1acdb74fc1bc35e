#![no_main]
//! Fuzz target `dsse_envelope`: see hallmark_fuzz_targets::dsse_envelope.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hallmark_fuzz_targets::dsse_envelope(data));
