//! Unwelcome clients for the tests of HTTP listeners (the plate endpoint, the
//! console): many idle connections from another loopback address, and a check
//! that the server closed a connection.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

/// Raises the open-files limit to the hard limit (at most 65,536): a test
/// holding 1,000 sockets on each side needs more than a default of 1,024.
pub fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max.min(65_536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Opens `n` TCP connections from `from` (a loopback address other than the
/// real clients' 127.0.0.1, to be another client) to `to`, sending nothing.
/// Connections refused outright are left out.
pub async fn idle_connections(from: &str, to: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    let Ok(from) = format!("{from}:0").parse::<SocketAddr>() else {
        return out;
    };
    for _ in 0..n {
        let Ok(sock) = TcpSocket::new_v4() else {
            break;
        };
        if sock.bind(from).is_err() {
            break;
        }
        if let Ok(s) = sock.connect(to).await {
            out.push(s);
        }
    }
    out
}

/// Whether the server closed `sock` within `within` (what it sent is read
/// and dropped).
pub async fn closed_within(sock: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, sock.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}
