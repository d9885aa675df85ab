//! Fuzz target: rule patterns and matching. Parsing any text and matching it against any
//! image must never panic (nor take more than pattern × label steps, which libFuzzer's
//! timeout would catch).
#![no_main]

use pullcred::fuzz_api::ImageRef;
use pullcred::fuzz_api::Pattern;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, image) = text.split_once('\n').unwrap_or((text, "a.example.com/x"));
    if let (Ok(p), Ok(i)) = (Pattern::parse(pattern), ImageRef::parse(image)) {
        let _ = p.matches(&i);
    }
});
