//! The serial transport shared by OSDP (RS-485 readers) and Modbus RTU: opening a
//! port with its line settings. Drivers own the reconnect loop; this only opens.

use serde::Deserialize;
use std::time::Duration;
use tokio_serial::{DataBits, Parity, SerialPortBuilderExt, SerialStream, StopBits};

/// Line parity, as written in config (`"none"`, `"even"`, `"odd"`).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LineParity {
    #[default]
    None,
    Even,
    Odd,
}

/// How to open a serial port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialSettings {
    pub port: String,
    pub baud: u32,
    pub parity: LineParity,
    pub stop_bits: u8,
}

impl SerialSettings {
    pub fn new(port: impl Into<String>, baud: u32) -> Self {
        Self {
            port: port.into(),
            baud,
            parity: LineParity::None,
            stop_bits: 1,
        }
    }

    /// The time one byte takes on the wire (start, 8 data, parity, stop bits).
    pub fn byte_time(&self) -> Duration {
        let bits = 1 + 8 + u32::from(self.parity != LineParity::None) + u32::from(self.stop_bits);
        Duration::from_secs_f64(f64::from(bits) / f64::from(self.baud.max(1)))
    }
}

/// Baud rates the drivers accept (what RS-485 readers and Modbus devices offer).
pub const BAUD_RATES: [u32; 7] = [2400, 4800, 9600, 19200, 38400, 57600, 115200];

/// Opens the port (8 data bits, no flow control) for async use.
pub fn open(s: &SerialSettings) -> std::io::Result<SerialStream> {
    let parity = match s.parity {
        LineParity::None => Parity::None,
        LineParity::Even => Parity::Even,
        LineParity::Odd => Parity::Odd,
    };
    let stop = if s.stop_bits == 2 {
        StopBits::Two
    } else {
        StopBits::One
    };
    tokio_serial::new(&s.port, s.baud)
        .data_bits(DataBits::Eight)
        .parity(parity)
        .stop_bits(stop)
        .open_native_async()
        .map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_time_at_9600_8n1() {
        let t = SerialSettings::new("/dev/null", 9600).byte_time();
        assert!((t.as_secs_f64() - 10.0 / 9600.0).abs() < 1e-9);
    }

    #[test]
    fn missing_port_is_an_error() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            assert!(open(&SerialSettings::new("/dev/does-not-exist", 9600)).is_err());
        });
    }
}
