//! Serving an axum router to strangers: the plate endpoint and the guards'
//! console. `axum::serve` keeps every connection as long as the client likes,
//! so one client dripping a byte at a time, or a thousand idle sockets, would
//! starve the cameras and the guards. Here each listener has:
//!
//! - a cap on open connections, and a smaller one per client address (an IPv6
//!   client counts by its /64); a connection over either is closed at once;
//! - a deadline for the TLS handshake (when there is one) and each request
//!   head; the same timer closes a keep-alive connection that sends no next
//!   request (hyper starts it when it waits for a head);
//! - a deadline for each request body, however slowly it drips;
//! - an idle limit: a connection with no traffic either way (a response the
//!   client does not read, a stalled handler) is closed.
//!
//! Handlers see the client's address as `ConnectInfo<SocketAddr>`.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use bytes::Bytes;
use futures::future::BoxFuture;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long open requests may finish after the server was told to stop.
const DRAIN: Duration = Duration::from_secs(5);

/// The limits of one listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_address: usize,
    /// TLS handshake, request head, and the wait for the next request.
    pub header_timeout: Duration,
    /// From the end of the head to the end of the body.
    pub body_timeout: Duration,
    /// No byte either way for this long closes the connection.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            max_per_address: 32,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Turns an accepted TCP connection into the stream HTTP is spoken on: the
/// connection itself, or TLS over it.
pub trait Handshake: Send + Sync + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn handshake(&self, tcp: TcpStream) -> BoxFuture<'static, io::Result<Self::Io>>;
}

/// Plain HTTP.
pub struct Plain;

impl Handshake for Plain {
    type Io = TcpStream;
    fn handshake(&self, tcp: TcpStream) -> BoxFuture<'static, io::Result<TcpStream>> {
        Box::pin(async move { Ok(tcp) })
    }
}

/// What a cap counts a client by: its address, or its /64 for IPv6 (one
/// host gets a whole /64); an IPv4-mapped address as the IPv4 address.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Open connections per client.
#[derive(Clone, Default)]
struct PerAddress(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One connection counted for its client until dropped.
struct AddressSlot(PerAddress, IpAddr);

impl PerAddress {
    fn take(&self, ip: IpAddr, max: usize) -> Option<AddressSlot> {
        let key = client_key(ip);
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(AddressSlot(self.clone(), key))
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut m = (self.0).0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.1);
            }
        }
    }
}

/// Figures of a listener, for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections closed at accept because a cap was reached.
    pub refused: AtomicU64,
    /// Connections closed for a timeout (handshake, head, body or idle).
    pub timed_out: AtomicU64,
}

/// Serves `app` on `tcp` until `stop`, then lets open requests finish (a
/// few seconds at most).
pub async fn serve<H: Handshake>(
    tcp: TcpListener,
    handshake: H,
    app: Router,
    limits: Limits,
    stats: Arc<Stats>,
    stop: CancellationToken,
) {
    let handshake = Arc::new(handshake);
    let total = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_address = PerAddress::default();
    let tracker = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            r = tcp.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("http: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = total.clone().try_acquire_owned() else {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "http: connection refused, listener full");
            continue;
        };
        let Some(slot) = per_address.take(peer.ip(), limits.max_per_address) else {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "http: connection refused, too many from this address");
            continue;
        };
        tracker.spawn(connection(
            stream,
            peer,
            handshake.clone(),
            app.clone(),
            limits,
            stats.clone(),
            stop.clone(),
            (permit, slot),
        ));
    }
    drop(tcp);
    tracker.close();
    if tokio::time::timeout(DRAIN, tracker.wait()).await.is_err() {
        tracing::debug!("http: connections still open at stop, dropped");
    }
}

#[allow(clippy::too_many_arguments)]
async fn connection<H: Handshake>(
    stream: TcpStream,
    peer: SocketAddr,
    handshake: Arc<H>,
    app: Router,
    limits: Limits,
    stats: Arc<Stats>,
    stop: CancellationToken,
    _slots: (OwnedSemaphorePermit, AddressSlot),
) {
    let _ = stream.set_nodelay(true);
    let io = match tokio::time::timeout(limits.header_timeout, handshake.handshake(stream)).await {
        Ok(Ok(io)) => io,
        Ok(Err(e)) => {
            tracing::debug!(%peer, "http: handshake failed: {e}");
            return;
        }
        Err(_) => {
            stats.timed_out.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "http: handshake timed out");
            return;
        }
    };
    let activity = Activity::new();
    let io = Watched {
        inner: io,
        activity: activity.clone(),
    };
    let body_timeout = limits.body_timeout;
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut app = app.clone();
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(ConnectInfo(peer));
        let body = if hyper::body::Body::is_end_stream(&body) {
            Body::new(body)
        } else {
            Body::new(DeadlineBody::new(body, body_timeout))
        };
        let req = hyper::Request::from_parts(parts, body);
        async move { tower_service::Service::call(&mut app, req).await }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut stopping = false;
    let tick = (limits.idle_timeout / 4).max(Duration::from_millis(100));
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    if e.is_timeout() {
                        stats.timed_out.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::debug!(%peer, "http: connection ended: {e}");
                }
                return;
            }
            _ = stop.cancelled(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep(tick) => {
                if activity.idle() >= limits.idle_timeout {
                    stats.timed_out.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, "http: connection idle, closed");
                    return;
                }
            }
        }
    }
}

/// When a connection last moved a byte.
#[derive(Clone)]
struct Activity(Arc<(Instant, AtomicU64)>);

impl Activity {
    fn new() -> Activity {
        Activity(Arc::new((Instant::now(), AtomicU64::new(0))))
    }
    fn touch(&self) {
        let ms = self.0 .0.elapsed().as_millis() as u64;
        self.0 .1.store(ms, Ordering::Relaxed);
    }
    fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.0 .1.load(Ordering::Relaxed));
        self.0 .0.elapsed().saturating_sub(last)
    }
}

/// The connection's stream, noting every byte read or written.
struct Watched<T> {
    inner: T,
    activity: Activity,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A request body that must be complete by a deadline.
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
    limit: Duration,
}

impl DeadlineBody {
    fn new(inner: Incoming, limit: Duration) -> Self {
        DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(limit)),
            limit,
        }
    }
}

/// The body did not arrive in time; handlers find it with [`is_body_timeout`].
#[derive(Debug, thiserror::Error)]
#[error("the body did not arrive within {} s", .0.as_secs())]
pub struct BodyTimeout(pub Duration);

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(f) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(f.map(|r| r.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            let limit = self.limit;
            return Poll::Ready(Some(Err(Box::new(BodyTimeout(limit)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether an error (from reading a body) is, or was caused by, a [`BodyTimeout`].
pub fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if e.is::<BodyTimeout>() {
            return true;
        }
        cur = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(client_key(mapped), "10.0.0.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn per_address_slots_are_given_back() {
        let p = PerAddress::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let one = p.take(ip, 2).unwrap();
        let two = p.take(ip, 2).unwrap();
        assert!(p.take(ip, 2).is_none());
        assert!(p.take("10.0.0.2".parse().unwrap(), 2).is_some());
        drop(one);
        let _three = p.take(ip, 2).unwrap();
        drop(two);
        drop(_three);
        assert!(p.0.lock().unwrap().is_empty(), "no entry left behind");
    }

    #[test]
    fn a_timeout_is_found_under_wrappers() {
        let e = axum::Error::new(BodyTimeout(Duration::from_secs(10)));
        assert!(is_body_timeout(&e));
        assert!(!is_body_timeout(&io::Error::other("x")));
    }
}
