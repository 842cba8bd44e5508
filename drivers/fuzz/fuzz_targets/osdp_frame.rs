//! OSDP: the stream framer, the packet decoder, reply parsing and card data.
#![no_main]
use drivers::osdp::{card, command::Reply, phy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = phy::FrameReader::default();
    // Feed in two chunks, as a serial port delivers them.
    let cut = data.first().map_or(0, |b| usize::from(*b) % (data.len() + 1));
    reader.push(&data[..cut]);
    while reader.next_packet().is_some() {}
    reader.push(&data[cut..]);
    while let Some(r) = reader.next_packet() {
        if let Ok(d) = r {
            let _ = Reply::parse(d.packet.code, &d.packet.data);
        }
    }
    let _ = phy::Packet::decode(data);
    if let Some((&code, rest)) = data.split_first() {
        let _ = Reply::parse(code, rest);
    }
    if data.len() >= 2 {
        let bits = u16::from_le_bytes([data[0], data[1]]);
        let _ = card::decode(bits, &data[2..]);
    }
});
