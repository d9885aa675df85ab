//! Fuzz target: the image reference splitter. It must never panic, and what it accepts must
//! print back to a reference that splits the same way.
#![no_main]

use pullcred::fuzz_api::ImageRef;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(image) = ImageRef::parse(text) {
        let again = ImageRef::parse(&image.to_string()).expect("a printed reference parses");
        assert_eq!(again.registry, image.registry);
        assert_eq!(again.repository, image.repository);
    }
});
