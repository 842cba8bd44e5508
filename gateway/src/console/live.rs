//! `GET /api/live`: the journal as Server-Sent Events, for the live page.
//!
//! Each record is one SSE event: `event: event` or `event: alarm`, `id:` its
//! `seq`, `data:` its payload (the same JSON the platform gets). A page that
//! reconnects (the browser sends `Last-Event-ID`, or the page `?since=`) gets
//! everything after the last seq it saw, also across a gateway restart, since
//! the journal is durable. The stream wakes on the journal's commits, and ends
//! on logout, session expiry and gateway shutdown.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream};
use serde::Deserialize;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::auth::Session;
use super::error::ApiError;
use super::metrics::LiveGuard;
use super::AppState;
use crate::journal::{Journal, Stored};

/// Records sent per wake-up before the journal is read again.
const BATCH: usize = 256;
/// A page further behind than this is told to reload instead (`event: gap`).
pub const MAX_CATCH_UP: u64 = 5_000;
/// How soon a browser retries after the connection drops.
const RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveParams {
    pub since: Option<String>,
}

/// Where a feed starts: after `Last-Event-ID`, else after `since`, else now.
pub fn start_seq(headers: &HeaderMap, since: Option<&str>, last: u64) -> Result<u64, ApiError> {
    let header = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let raw = header.or(since.map(str::trim).filter(|s| !s.is_empty()));
    match raw {
        None => Ok(last),
        Some(s) => s
            .parse::<u64>()
            .map(|n| n.min(last))
            .map_err(|_| ApiError::invalid(format!("since: `{s}` is not a record number"))),
    }
}

struct Feed {
    journal: Journal,
    committed: watch::Receiver<u64>,
    /// The last seq sent.
    cursor: u64,
    pending: VecDeque<Event>,
    st: AppState,
    session: [u8; 32],
    shutdown: CancellationToken,
    _guard: LiveGuard,
}

impl Feed {
    /// Reads the next records after the cursor into `pending`.
    fn fill(&mut self) {
        let last = *self.committed.borrow_and_update();
        if last <= self.cursor {
            return;
        }
        let end = last.min(self.cursor + BATCH as u64);
        let mut next = self.cursor;
        for (seq, raw) in self.journal.range(self.cursor + 1, end, false) {
            next = seq;
            let Some(s) = Stored::decode(&raw) else {
                continue;
            };
            let Ok(json) = std::str::from_utf8(s.json) else {
                continue;
            };
            self.pending.push_back(
                Event::default()
                    .event(if s.alarm { "alarm" } else { "event" })
                    .id(seq.to_string())
                    .data(json),
            );
        }
        // Seqs evicted by retention leave holes: skip past them.
        self.cursor = next.max(end);
    }

    async fn next_event(mut self) -> Option<(Result<Event, Infallible>, Feed)> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some((Ok(e), self));
            }
            if self.shutdown.is_cancelled() || !self.st.sessions.alive(&self.session) {
                return None;
            }
            self.fill();
            if !self.pending.is_empty() {
                continue;
            }
            if *self.committed.borrow() > self.cursor {
                continue; // a stretch of evicted seqs
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return None,
                changed = self.committed.changed() => {
                    if changed.is_err() {
                        return None; // the journal has stopped
                    }
                }
                // Notice a logout or expiry within a while even when all is quiet.
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
        }
    }
}

/// `GET /api/live?since=SEQ`
pub async fn live(
    session: Session,
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<LiveParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let journal = st.journal.clone();
    let committed = journal.committed();
    let last = *committed.borrow();
    let mut cursor = start_seq(&headers, p.since.as_deref(), last)?;
    let mut first = VecDeque::new();
    // The page learns where the feed starts, as an id it will resume from.
    let hello = |seq: u64, gap: bool| {
        Event::default()
            .event(if gap { "gap" } else { "hello" })
            .id(seq.to_string())
            .retry(RETRY)
            .data(format!(
                r#"{{"seq":{seq},"last":{last},"user":{}}}"#,
                serde_json::Value::String(session.user.clone())
            ))
    };
    let oldest = journal.first_seq();
    if last - cursor > MAX_CATCH_UP || (cursor + 1 < oldest && cursor < last) {
        // Too far behind (or records gone): the page reloads its lists from here.
        cursor = last;
        first.push_back(hello(cursor, true));
    } else {
        first.push_back(hello(cursor, false));
    }
    let feed = Feed {
        journal,
        committed,
        cursor,
        pending: first,
        shutdown: st.shutdown.clone(),
        session: session.key,
        _guard: st.metrics.live_client(),
        st,
    };
    let stream = stream::unfold(feed, Feed::next_event);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn resumes_from_last_event_id_then_since() {
        let mut h = HeaderMap::new();
        assert_eq!(start_seq(&h, None, 40).unwrap(), 40);
        assert_eq!(start_seq(&h, Some("12"), 40).unwrap(), 12);
        assert_eq!(start_seq(&h, Some("99"), 40).unwrap(), 40);
        h.insert("last-event-id", HeaderValue::from_static("17"));
        assert_eq!(start_seq(&h, Some("12"), 40).unwrap(), 17);
        assert!(start_seq(&HeaderMap::new(), Some("x"), 40).is_err());
    }
}
