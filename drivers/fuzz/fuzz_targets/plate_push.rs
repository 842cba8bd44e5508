//! Plate pushes: JSON (both layouts), multipart, the JPEG check.
#![no_main]
use drivers::lpr_http::push;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = push::parse_json(data);
    let _ = push::check_jpeg(data);
    let body = bytes::Bytes::copy_from_slice(data);
    let _ = futures::executor::block_on(push::parse_multipart("XB", body));
});
