#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pitime::fuzz::nts_request(data));
