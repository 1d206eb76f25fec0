#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pitime::fuzz::leap_file(data));
