//! Fuzz target: the cache entry decoder, on any bytes (a corrupt or planted entry file). It
//! must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = pullcred::fuzz_api::decode(data);
});
