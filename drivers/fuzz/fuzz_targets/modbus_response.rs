//! Modbus: RTU and TCP framing, and response PDU decoding against each request kind.
#![no_main]
use drivers::modbus::{frame, pdu};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rtu = data.to_vec();
    while frame::rtu_take(&mut rtu).is_some() {}
    let mut tcp = data.to_vec();
    while let Some(f) = frame::tcp_take(&mut tcp) {
        if f.is_err() {
            break;
        }
    }
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let count = u16::from(sel >> 2) + 1;
    let req = match sel & 3 {
        0 => pdu::Request::Read { table: pdu::Table::Coil, address: 0, count },
        1 => pdu::Request::Read { table: pdu::Table::Discrete, address: 3, count },
        2 => pdu::Request::Read { table: pdu::Table::Holding, address: 9, count },
        _ => pdu::Request::WriteCoil { address: count, on: sel & 4 != 0 },
    };
    let _ = pdu::decode(&req, rest);
});
