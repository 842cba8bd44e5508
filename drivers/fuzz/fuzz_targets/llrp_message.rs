//! LLRP: message framing and the parameters of reports, responses and events.
#![no_main]
use drivers::llrp::message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = message::Message::decode(data) {
        let _ = message::tag_reads(&m.body);
        let _ = message::status(&m.body);
        let _ = message::connection_attempt(&m.body);
    }
    let _ = message::params(data);
    let _ = message::tag_reads(data);
    let _ = message::status(data);
    let _ = message::connection_attempt(data);
});
