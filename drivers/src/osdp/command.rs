//! OSDP commands the CP sends and replies a PD answers: codes, payloads, and
//! the parsing of reply data into typed replies.

use thiserror::Error;

/// Command codes.
pub mod cmd {
    pub const POLL: u8 = 0x60;
    pub const ID: u8 = 0x61;
    pub const CAP: u8 = 0x62;
    pub const LSTAT: u8 = 0x64;
    pub const ISTAT: u8 = 0x65;
    pub const OUT: u8 = 0x68;
    pub const LED: u8 = 0x69;
    pub const BUZ: u8 = 0x6A;
    pub const TEXT: u8 = 0x6B;
    pub const KEYSET: u8 = 0x75;
    pub const CHLNG: u8 = 0x76;
    pub const SCRYPT: u8 = 0x77;
}

/// Reply codes.
pub mod reply {
    pub const ACK: u8 = 0x40;
    pub const NAK: u8 = 0x41;
    pub const PDID: u8 = 0x45;
    pub const PDCAP: u8 = 0x46;
    pub const LSTATR: u8 = 0x48;
    pub const ISTATR: u8 = 0x49;
    pub const OSTATR: u8 = 0x4A;
    pub const RSTATR: u8 = 0x4B;
    pub const RAW: u8 = 0x50;
    pub const FMT: u8 = 0x51;
    pub const KEYPAD: u8 = 0x53;
    pub const CCRYPT: u8 = 0x76;
    pub const RMAC_I: u8 = 0x78;
    pub const BUSY: u8 = 0x79;
}

/// LED colours of osdp_LED.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedColour {
    Off = 0,
    Red = 1,
    Green = 2,
    Amber = 3,
}

/// Output control codes of osdp_OUT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputControl {
    /// Permanent off, cancelling a timed state.
    Off = 1,
    /// Permanent on, cancelling a timed state.
    On = 2,
    /// On for the timer, then back to the permanent state.
    Pulse = 5,
}

/// A command to one PD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Poll,
    Id,
    Cap,
    LocalStatus,
    InputStatus,
    Output {
        number: u8,
        control: OutputControl,
        /// Units of 100 ms (for `Pulse`).
        timer: u16,
    },
    Led {
        reader: u8,
        led: u8,
        colour: LedColour,
        /// Units of 100 ms.
        timer: u16,
    },
    Buzzer {
        reader: u8,
        /// On and off times in units of 100 ms, and the number of beeps.
        on: u8,
        off: u8,
        count: u8,
    },
    Text {
        reader: u8,
        text: String,
    },
    KeySet(crate::osdp::sc::Key),
    Challenge([u8; 8]),
    ServerCryptogram([u8; 16]),
}

/// Longest text osdp_TEXT carries.
pub const TEXT_MAX: usize = 32;

impl Command {
    pub fn code(&self) -> u8 {
        match self {
            Command::Poll => cmd::POLL,
            Command::Id => cmd::ID,
            Command::Cap => cmd::CAP,
            Command::LocalStatus => cmd::LSTAT,
            Command::InputStatus => cmd::ISTAT,
            Command::Output { .. } => cmd::OUT,
            Command::Led { .. } => cmd::LED,
            Command::Buzzer { .. } => cmd::BUZ,
            Command::Text { .. } => cmd::TEXT,
            Command::KeySet(_) => cmd::KEYSET,
            Command::Challenge(_) => cmd::CHLNG,
            Command::ServerCryptogram(_) => cmd::SCRYPT,
        }
    }

    /// A short name for logs and fault messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Poll => "POLL",
            Command::Id => "ID",
            Command::Cap => "CAP",
            Command::LocalStatus => "LSTAT",
            Command::InputStatus => "ISTAT",
            Command::Output { .. } => "OUT",
            Command::Led { .. } => "LED",
            Command::Buzzer { .. } => "BUZ",
            Command::Text { .. } => "TEXT",
            Command::KeySet(_) => "KEYSET",
            Command::Challenge(_) => "CHLNG",
            Command::ServerCryptogram(_) => "SCRYPT",
        }
    }

    /// The command's data (after the code), in clear.
    pub fn data(&self) -> Vec<u8> {
        match self {
            Command::Poll | Command::LocalStatus | Command::InputStatus => vec![],
            // Reply type 0: the standard PDID / PDCAP.
            Command::Id | Command::Cap => vec![0],
            Command::Output {
                number,
                control,
                timer,
            } => {
                let t = timer.to_le_bytes();
                vec![*number, *control as u8, t[0], t[1]]
            }
            Command::Led {
                reader,
                led,
                colour,
                timer,
            } => {
                let t = timer.to_le_bytes();
                let c = *colour as u8;
                vec![
                    *reader, *led, // temporary: set, steady (on 1, off 0), for `timer`
                    2, 1, 0, c, c, t[0], t[1], // permanent: no change
                    0, 0, 0, 0, 0,
                ]
            }
            Command::Buzzer {
                reader,
                on,
                off,
                count,
            } => vec![*reader, 2, *on, *off, *count],
            Command::Text { reader, text } => {
                let bytes: Vec<u8> = text
                    .chars()
                    .map(|c| {
                        if c.is_ascii_graphic() || c == ' ' {
                            c as u8
                        } else {
                            b'?'
                        }
                    })
                    .take(TEXT_MAX)
                    .collect();
                // Permanent text without wrap, at row 1 column 1.
                let mut d = vec![*reader, 1, 0, 1, 1, bytes.len() as u8];
                d.extend_from_slice(&bytes);
                d
            }
            Command::KeySet(key) => {
                let mut d = vec![1, 16];
                d.extend_from_slice(key);
                d
            }
            Command::Challenge(r) => r.to_vec(),
            Command::ServerCryptogram(c) => c.to_vec(),
        }
    }
}

/// Why a PD refused a command (osdp_NAK).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nak(pub u8);

impl Nak {
    pub const CHECK: u8 = 1;
    pub const LENGTH: u8 = 2;
    pub const UNKNOWN: u8 = 3;
    pub const SEQUENCE: u8 = 4;
    pub const SC_UNSUPPORTED: u8 = 5;
    pub const SC_CONDITION: u8 = 6;

    pub fn describe(self) -> &'static str {
        match self.0 {
            0 => "no error",
            1 => "message check character(s) error",
            2 => "command length error",
            3 => "unknown command code",
            4 => "unexpected sequence number",
            5 => "security block not supported",
            6 => "encrypted communication required",
            7 => "biometric type not supported",
            8 => "biometric format not supported",
            9 => "unable to process command record",
            _ => "reserved NAK code",
        }
    }
}

/// A PD capability (osdp_PDCAP entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability {
    pub function: u8,
    pub compliance: u8,
    pub items: u8,
}

/// Capability function codes we act on.
pub mod capability {
    pub const CONTACT_STATUS: u8 = 1;
    pub const OUTPUT_CONTROL: u8 = 2;
    pub const LED: u8 = 4;
    pub const AUDIBLE: u8 = 5;
    pub const TEXT: u8 = 6;
    pub const SECURITY: u8 = 9;
}

/// A reply, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Ack,
    Nak(Nak),
    Busy,
    PdId {
        vendor: [u8; 3],
        model: u8,
        version: u8,
        serial: u32,
        firmware: [u8; 3],
    },
    PdCap(Vec<Capability>),
    LocalStatus {
        tamper: bool,
        power_fail: bool,
    },
    InputStatus(Vec<bool>),
    OutputStatus(Vec<bool>),
    /// Card data as bits (osdp_RAW); `format` 1 = Wiegand, 0 = unspecified.
    Raw {
        reader: u8,
        format: u8,
        bits: u16,
        data: Vec<u8>,
    },
    /// Card data as ASCII (osdp_FMT, deprecated but still sent by old readers).
    Formatted {
        reader: u8,
        text: String,
    },
    Keypad {
        reader: u8,
        keys: Vec<u8>,
    },
    ClientCryptogram {
        cuid: [u8; 8],
        rnd_b: [u8; 8],
        cryptogram: [u8; 16],
    },
    InitialRmac([u8; 16]),
    /// A reply we do not act on (manufacturer-specific, remote status...).
    Other {
        code: u8,
    },
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("reply {code:#04x}: {what}")]
pub struct ReplyError {
    pub code: u8,
    pub what: &'static str,
}

fn arr<const N: usize>(code: u8, d: &[u8], what: &'static str) -> Result<[u8; N], ReplyError> {
    d.get(..N)
        .and_then(|s| s.try_into().ok())
        .ok_or(ReplyError { code, what })
}

impl Reply {
    /// Parses a reply's (decrypted) data.
    pub fn parse(code: u8, d: &[u8]) -> Result<Reply, ReplyError> {
        let short = |what| ReplyError { code, what };
        Ok(match code {
            reply::ACK => Reply::Ack,
            reply::NAK => Reply::Nak(Nak(*d.first().ok_or(short("NAK without a code"))?)),
            reply::BUSY => Reply::Busy,
            reply::PDID => {
                if d.len() < 12 {
                    return Err(short("PDID shorter than 12 bytes"));
                }
                Reply::PdId {
                    vendor: [d[0], d[1], d[2]],
                    model: d[3],
                    version: d[4],
                    serial: u32::from_le_bytes([d[5], d[6], d[7], d[8]]),
                    firmware: [d[9], d[10], d[11]],
                }
            }
            reply::PDCAP => {
                if !d.len().is_multiple_of(3) {
                    return Err(short("PDCAP length not a multiple of 3"));
                }
                Reply::PdCap(
                    d.chunks(3)
                        .map(|c| Capability {
                            function: c[0],
                            compliance: c[1],
                            items: c[2],
                        })
                        .collect(),
                )
            }
            reply::LSTATR => {
                let s: [u8; 2] = arr(code, d, "LSTATR shorter than 2 bytes")?;
                Reply::LocalStatus {
                    tamper: s[0] != 0,
                    power_fail: s[1] != 0,
                }
            }
            reply::ISTATR => Reply::InputStatus(d.iter().map(|b| *b != 0).collect()),
            reply::OSTATR => Reply::OutputStatus(d.iter().map(|b| *b != 0).collect()),
            reply::RAW => {
                let h: [u8; 4] = arr(code, d, "RAW shorter than its header")?;
                let bits = u16::from_le_bytes([h[2], h[3]]);
                let n = usize::from(bits).div_ceil(8);
                let data = d
                    .get(4..4 + n)
                    .ok_or(short("RAW shorter than its bit count"))?
                    .to_vec();
                Reply::Raw {
                    reader: h[0],
                    format: h[1],
                    bits,
                    data,
                }
            }
            reply::FMT => {
                let h: [u8; 3] = arr(code, d, "FMT shorter than its header")?;
                let n = usize::from(h[2]);
                let chars = d
                    .get(3..3 + n)
                    .ok_or(short("FMT shorter than its length"))?;
                Reply::Formatted {
                    reader: h[0],
                    text: String::from_utf8_lossy(chars).into_owned(),
                }
            }
            reply::KEYPAD => {
                let h: [u8; 2] = arr(code, d, "KEYPAD shorter than its header")?;
                let keys = d
                    .get(2..2 + usize::from(h[1]))
                    .ok_or(short("KEYPAD shorter than its count"))?
                    .to_vec();
                Reply::Keypad { reader: h[0], keys }
            }
            reply::CCRYPT => {
                let all: [u8; 32] = arr(code, d, "CCRYPT shorter than 32 bytes")?;
                let mut cuid = [0u8; 8];
                let mut rnd_b = [0u8; 8];
                let mut cryptogram = [0u8; 16];
                cuid.copy_from_slice(&all[..8]);
                rnd_b.copy_from_slice(&all[8..16]);
                cryptogram.copy_from_slice(&all[16..]);
                Reply::ClientCryptogram {
                    cuid,
                    rnd_b,
                    cryptogram,
                }
            }
            reply::RMAC_I => Reply::InitialRmac(arr(code, d, "RMAC_I shorter than 16 bytes")?),
            other => Reply::Other { code: other },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_pulse_bytes() {
        let c = Command::Output {
            number: 0,
            control: OutputControl::Pulse,
            timer: 30,
        };
        assert_eq!(c.data(), vec![0, 5, 30, 0]);
        assert_eq!(c.code(), 0x68);
    }

    #[test]
    fn led_is_fourteen_bytes() {
        let c = Command::Led {
            reader: 0,
            led: 0,
            colour: LedColour::Green,
            timer: 20,
        };
        assert_eq!(c.data().len(), 14);
    }

    #[test]
    fn text_is_ascii_and_bounded() {
        let c = Command::Text {
            reader: 0,
            text: "欢迎 Welcome home, this line is far too long for a reader".into(),
        };
        let d = c.data();
        assert_eq!(usize::from(d[5]), TEXT_MAX);
        assert!(d[6..].iter().all(|b| b.is_ascii()));
    }

    #[test]
    fn raw_reply_parses_and_rejects_truncation() {
        let r = Reply::parse(reply::RAW, &[0, 1, 26, 0, 1, 2, 3, 4]).unwrap();
        assert_eq!(
            r,
            Reply::Raw {
                reader: 0,
                format: 1,
                bits: 26,
                data: vec![1, 2, 3, 4]
            }
        );
        assert!(Reply::parse(reply::RAW, &[0, 1, 26, 0, 1, 2, 3]).is_err());
        assert!(Reply::parse(reply::CCRYPT, &[0; 31]).is_err());
        assert!(Reply::parse(reply::NAK, &[]).is_err());
    }

    #[test]
    fn every_reply_code_survives_garbage() {
        for code in 0..=255u8 {
            for len in 0..40usize {
                let d: Vec<u8> = (0..len)
                    .map(|i| (i * 37 + usize::from(code)) as u8)
                    .collect();
                let _ = Reply::parse(code, &d);
            }
        }
    }
}
