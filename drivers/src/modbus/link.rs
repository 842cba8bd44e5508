//! The connection to one Modbus device, TCP or RTU over the shared serial
//! transport: send a request, wait for its response.

use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_serial::SerialStream;

use super::frame::{self, Frame, FrameError};
use super::pdu::{self, PduError, Request, Response};

#[derive(Debug, Error)]
pub enum CallError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Pdu(#[from] PduError),
}

impl CallError {
    /// The device answered (an exception): the link itself is fine.
    pub fn device_answered(&self) -> bool {
        matches!(self, CallError::Pdu(PduError::Exception(_)))
    }
}

pub enum Link {
    Tcp { stream: TcpStream, transaction: u16 },
    Rtu(SerialStream),
}

impl Link {
    pub async fn call(
        &mut self,
        unit: u8,
        req: &Request,
        timeout: Duration,
    ) -> Result<Response, CallError> {
        let pdu = req.encode();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 512];
        match self {
            Link::Tcp {
                stream,
                transaction,
            } => {
                *transaction = transaction.wrapping_add(1);
                let tid = *transaction;
                stream
                    .write_all(&frame::tcp_request(tid, unit, &pdu))
                    .await?;
                loop {
                    while let Some(f) = frame::tcp_take(&mut buf) {
                        match f {
                            // A late answer to an earlier, timed-out request: skip it.
                            Ok(Frame { transaction, .. }) if transaction != tid => {}
                            Ok(f) => return Ok(pdu::decode(req, &f.pdu)?),
                            Err(e) => return Err(malformed(e)),
                        }
                    }
                    let n = read(stream, &mut chunk, deadline, timeout).await?;
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
            Link::Rtu(port) => {
                AsyncWriteExt::write_all(port, &frame::rtu_request(unit, &pdu)).await?;
                loop {
                    while let Some(f) = frame::rtu_take(&mut buf) {
                        match f {
                            Ok(f) if f.unit == unit => return Ok(pdu::decode(req, &f.pdu)?),
                            Ok(_) => {}
                            Err(e) => tracing::debug!("modbus RTU line noise: {e}"),
                        }
                    }
                    let n = read(port, &mut chunk, deadline, timeout).await?;
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }
}

fn malformed(e: FrameError) -> CallError {
    CallError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        e.to_string(),
    ))
}

async fn read<R: AsyncReadExt + Unpin>(
    r: &mut R,
    chunk: &mut [u8],
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> Result<usize, CallError> {
    match tokio::time::timeout_at(deadline, r.read(chunk)).await {
        Err(_) => Err(CallError::Timeout(timeout)),
        Ok(Ok(0)) => Err(CallError::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed by the device",
        ))),
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => Err(CallError::Io(e)),
    }
}
