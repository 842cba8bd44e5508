//! Platform commands: any payload on any command topic is answered, never a panic;
//! what parses is normalised (credentials re-parse to themselves).
#![no_main]

use gateway::control::{parse_platform, request_id, Request};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 5] = ["person.upsert", "person.delete", "door.open", "alarm.ack", "x.unknown"];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, payload)) = data.split_first() else {
        return;
    };
    let name = NAMES[sel as usize % NAMES.len()];
    let _ = request_id(payload);
    if let Ok(Request::Upsert { person, .. }) = parse_platform(name, payload) {
        for c in &person.credentials {
            let again = drivers::Credential::parse(c.kind, &c.value).expect("normalised credential re-parses");
            assert_eq!(&again, c);
        }
    }
});
