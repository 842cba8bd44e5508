//! Modbus PDUs: the requests the driver sends (read bits or registers, write a
//! coil) and the decoding of responses, exceptions included.

use thiserror::Error;

/// The four Modbus tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// Read/write bits (function 1, written with 5).
    Coil,
    /// Read-only bits (function 2).
    Discrete,
    /// Read/write 16-bit registers (function 3).
    Holding,
    /// Read-only 16-bit registers (function 4).
    Input,
}

impl Table {
    pub fn is_bits(self) -> bool {
        matches!(self, Table::Coil | Table::Discrete)
    }
    /// Most items one read may ask for.
    pub fn max_count(self) -> u16 {
        if self.is_bits() {
            2000
        } else {
            125
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Table::Coil => "coils",
            Table::Discrete => "discrete inputs",
            Table::Holding => "holding registers",
            Table::Input => "input registers",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Read {
        table: Table,
        address: u16,
        count: u16,
    },
    WriteCoil {
        address: u16,
        on: bool,
    },
}

impl Request {
    pub fn function(&self) -> u8 {
        match self {
            Request::Read { table, .. } => match table {
                Table::Coil => 1,
                Table::Discrete => 2,
                Table::Holding => 3,
                Table::Input => 4,
            },
            Request::WriteCoil { .. } => 5,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.function()];
        match *self {
            Request::Read { address, count, .. } => {
                out.extend_from_slice(&address.to_be_bytes());
                out.extend_from_slice(&count.to_be_bytes());
            }
            Request::WriteCoil { address, on } => {
                out.extend_from_slice(&address.to_be_bytes());
                out.extend_from_slice(&(if on { 0xFF00u16 } else { 0 }).to_be_bytes());
            }
        }
        out
    }

    pub fn describe(&self) -> String {
        match self {
            Request::Read {
                table,
                address,
                count,
            } => format!(
                "reading {} {address}..{}",
                table.name(),
                u32::from(*address) + u32::from(*count)
            ),
            Request::WriteCoil { address, on } => {
                format!("writing coil {address} {}", if *on { "on" } else { "off" })
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Bits(Vec<bool>),
    Registers(Vec<u16>),
    CoilWritten,
}

/// A Modbus exception code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exception(pub u8);

impl Exception {
    pub fn describe(self) -> &'static str {
        match self.0 {
            1 => "illegal function",
            2 => "illegal data address",
            3 => "illegal data value",
            4 => "server device failure",
            5 => "acknowledge",
            6 => "server device busy",
            8 => "memory parity error",
            10 => "gateway path unavailable",
            11 => "gateway target device failed to respond",
            _ => "unknown exception",
        }
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PduError {
    #[error("exception {} ({})", .0 .0, .0.describe())]
    Exception(Exception),
    #[error("malformed response: {0}")]
    Malformed(&'static str),
}

/// Decodes the response PDU to `req`.
pub fn decode(req: &Request, pdu: &[u8]) -> Result<Response, PduError> {
    let (&fc, rest) = pdu.split_first().ok_or(PduError::Malformed("empty"))?;
    if fc == req.function() | 0x80 {
        let code = *rest
            .first()
            .ok_or(PduError::Malformed("exception without code"))?;
        return Err(PduError::Exception(Exception(code)));
    }
    if fc != req.function() {
        return Err(PduError::Malformed(
            "function code does not match the request",
        ));
    }
    match *req {
        Request::Read { table, count, .. } => {
            let (&n, data) = rest
                .split_first()
                .ok_or(PduError::Malformed("no byte count"))?;
            let n = usize::from(n);
            if data.len() != n {
                return Err(PduError::Malformed("byte count does not match the data"));
            }
            let count = usize::from(count);
            if table.is_bits() {
                if n != count.div_ceil(8) {
                    return Err(PduError::Malformed("wrong number of bit bytes"));
                }
                Ok(Response::Bits(
                    (0..count)
                        .map(|i| data[i / 8] >> (i % 8) & 1 == 1)
                        .collect(),
                ))
            } else {
                if n != count * 2 {
                    return Err(PduError::Malformed("wrong number of register bytes"));
                }
                Ok(Response::Registers(
                    data.chunks(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect(),
                ))
            }
        }
        Request::WriteCoil { .. } => {
            if pdu != req.encode().as_slice() {
                return Err(PduError::Malformed("write echo differs from the request"));
            }
            Ok(Response::CoilWritten)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_bits_and_registers() {
        let r = Request::Read {
            table: Table::Discrete,
            address: 0,
            count: 10,
        };
        assert_eq!(r.encode(), vec![2, 0, 0, 0, 10]);
        let bits = decode(&r, &[2, 2, 0b0000_0101, 0b10]).unwrap();
        let Response::Bits(b) = bits else { panic!() };
        assert_eq!(b.len(), 10);
        assert!(b[0] && !b[1] && b[2] && b[9]);
        let r = Request::Read {
            table: Table::Input,
            address: 3,
            count: 2,
        };
        assert_eq!(
            decode(&r, &[4, 4, 0x01, 0xF4, 0, 7]).unwrap(),
            Response::Registers(vec![500, 7])
        );
    }

    #[test]
    fn exceptions_and_malformed() {
        let r = Request::Read {
            table: Table::Holding,
            address: 0,
            count: 1,
        };
        assert_eq!(
            decode(&r, &[0x83, 2]),
            Err(PduError::Exception(Exception(2)))
        );
        assert!(decode(&r, &[3, 2, 0]).is_err());
        assert!(decode(&r, &[4, 2, 0, 0]).is_err());
        assert!(decode(&r, &[]).is_err());
        let w = Request::WriteCoil {
            address: 7,
            on: true,
        };
        assert_eq!(w.encode(), vec![5, 0, 7, 0xFF, 0]);
        assert_eq!(decode(&w, &w.encode()), Ok(Response::CoilWritten));
    }

    #[test]
    fn garbage_never_panics() {
        let reqs = [
            Request::Read {
                table: Table::Coil,
                address: 0,
                count: 17,
            },
            Request::Read {
                table: Table::Input,
                address: 0,
                count: 3,
            },
            Request::WriteCoil {
                address: 1,
                on: false,
            },
        ];
        let mut seed = 7u32;
        for _ in 0..5000 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let n = (seed >> 24) as usize % 12;
            let pdu: Vec<u8> = (0..n).map(|i| (seed >> (i % 24)) as u8).collect();
            for r in &reqs {
                let _ = decode(r, &pdu);
            }
        }
    }
}
