//! STS, IAM and EC2 query (form-encoded) request bodies, through the embedded AWS's services as an
//! authenticated caller would send them (never panics, never a 5xx).
#![no_main]

mod emulator;

use libfuzzer_sys::fuzz_target;

const VERSIONS: &[&str] = &["2011-06-15", "2010-05-08", "2016-11-15"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    // The protocol comes from `Version`; prefix one unless the input chose its own.
    let mut form = format!("Version={}&", VERSIONS[selector as usize % VERSIONS.len()]).into_bytes();
    form.extend_from_slice(body);
    let status = emulator::serve(None, &form);
    assert!(status < 500, "query answered {status} to {:?}", String::from_utf8_lossy(&form));
});
