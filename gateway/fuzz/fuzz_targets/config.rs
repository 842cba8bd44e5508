//! Config files: any text gives a config or errors naming keys, never a panic.
#![no_main]

use gateway::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(errors) = Config::parse(text, std::path::Path::new("/nonexistent")) {
            assert!(!errors.is_empty());
        }
    }
});
