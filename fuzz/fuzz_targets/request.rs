//! Fuzz target: the kubelet request decoder, on any bytes. It must never panic, and an error
//! must stay one line.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = pullcred::fuzz_api::decode_request(data) {
        assert!(!e.to_string().contains('\n'));
    }
});
