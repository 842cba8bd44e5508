//! Request-id de-duplication, with no I/O: a command is run once per
//! (command, `request_id`); a redelivery gets the first run's reply again.
//!
//! - An entry is made when the command is *accepted*, not when it is answered:
//!   a duplicate arriving while the first still runs waits for its reply
//!   instead of running again.
//! - The payload's SHA-256 is kept: a `request_id` reused with another payload
//!   is a platform bug, refused as `conflict` rather than answered with a reply
//!   to a different command.
//! - Memory is bounded by count and bytes: a reply over [`Replies::MAX_REPLY`]
//!   bytes is kept in its short form (no `result`).

use sha2::{Digest as _, Sha256};
use std::collections::{HashMap, VecDeque};

pub type Digest = [u8; 32];

pub fn digest(payload: &[u8]) -> Digest {
    Sha256::digest(payload).into()
}

type Key = (String, String);

enum Entry {
    /// Accepted, not answered yet; `waiting` duplicates get the reply too.
    Running {
        digest: Digest,
        waiting: usize,
    },
    Done {
        digest: Digest,
        reply: Vec<u8>,
    },
}

/// What to do with an incoming command.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// First time: run it (an entry now says it is running).
    New,
    /// The same command is running: its reply will be sent for this one too.
    Running,
    /// Already answered: send this reply again.
    Again(Vec<u8>),
    /// The id was used for another payload.
    Conflict,
}

#[derive(Default)]
pub struct Replies {
    entries: HashMap<Key, Entry>,
    /// Answered entries, oldest first (running ones are bounded by the job queue).
    order: VecDeque<Key>,
    bytes: usize,
}

impl Replies {
    /// Answered request ids remembered at most.
    pub const KEEP: usize = 1000;
    /// Bytes of kept replies at most.
    pub const MAX_BYTES: usize = 1024 * 1024;
    /// A reply larger than this is kept in its short form.
    pub const MAX_REPLY: usize = 4 * 1024;

    pub fn seen(&mut self, name: &str, id: &str, digest: Digest) -> Seen {
        let key = (name.to_owned(), id.to_owned());
        match self.entries.get_mut(&key) {
            None => {
                self.entries
                    .insert(key, Entry::Running { digest, waiting: 0 });
                Seen::New
            }
            Some(Entry::Running { digest: d, .. }) | Some(Entry::Done { digest: d, .. })
                if *d != digest =>
            {
                Seen::Conflict
            }
            Some(Entry::Running { waiting, .. }) => {
                *waiting += 1;
                Seen::Running
            }
            Some(Entry::Done { reply, .. }) => Seen::Again(reply.clone()),
        }
    }

    /// The command ran: keeps its reply (`short` when `full` is large) and
    /// returns how many duplicates wait for it.
    pub fn finish(&mut self, name: &str, id: &str, full: &[u8], short: Vec<u8>) -> usize {
        let key = (name.to_owned(), id.to_owned());
        let (digest, waiting) = match self.entries.remove(&key) {
            Some(Entry::Running { digest, waiting }) => (digest, waiting),
            // Not accepted through `seen` (cannot happen) or already done: keep nothing new.
            Some(done @ Entry::Done { .. }) => {
                self.entries.insert(key, done);
                return 0;
            }
            None => return 0,
        };
        let reply = if full.len() <= Self::MAX_REPLY {
            full.to_vec()
        } else {
            short
        };
        self.bytes += reply.len() + key.0.len() + key.1.len();
        self.entries
            .insert(key.clone(), Entry::Done { digest, reply });
        self.order.push_back(key);
        while self.order.len() > Self::KEEP || self.bytes > Self::MAX_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(Entry::Done { reply, .. }) = self.entries.remove(&old) {
                self.bytes -= reply.len() + old.0.len() + old.1.len();
            }
        }
        waiting
    }

    /// The command was not run after all (no room in the queue): a retry may run it.
    pub fn forget(&mut self, name: &str, id: &str) {
        let key = (name.to_owned(), id.to_owned());
        if matches!(self.entries.get(&key), Some(Entry::Running { .. })) {
            self.entries.remove(&key);
        }
    }

    /// Bytes of replies kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Request ids remembered (running or answered).
    pub fn kept(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_duplicates_runs_once_and_all_are_answered() {
        let mut r = Replies::default();
        let d = digest(b"{\"request_id\":\"a\"}");
        assert_eq!(r.seen("door.open", "a", d), Seen::New);
        for _ in 0..4 {
            assert_eq!(r.seen("door.open", "a", d), Seen::Running);
        }
        assert_eq!(r.finish("door.open", "a", b"reply", b"short".to_vec()), 4);
        assert_eq!(r.seen("door.open", "a", d), Seen::Again(b"reply".to_vec()));
        // The same id on another command is another request.
        assert_eq!(r.seen("alarm.ack", "a", d), Seen::New);
    }

    #[test]
    fn a_reused_id_with_another_payload_is_a_conflict() {
        let mut r = Replies::default();
        assert_eq!(r.seen("door.open", "a", digest(b"1")), Seen::New);
        assert_eq!(r.seen("door.open", "a", digest(b"2")), Seen::Conflict);
        r.finish("door.open", "a", b"reply", Vec::new());
        assert_eq!(r.seen("door.open", "a", digest(b"2")), Seen::Conflict);
        assert_eq!(
            r.seen("door.open", "a", digest(b"1")),
            Seen::Again(b"reply".to_vec())
        );
    }

    #[test]
    fn memory_is_bounded_by_bytes_and_count() {
        let mut r = Replies::default();
        let big = vec![b'x'; 1024 * 1024];
        for i in 0..300 {
            let id = format!("u{i}");
            assert_eq!(
                r.seen("person.upsert", &id, digest(id.as_bytes())),
                Seen::New
            );
            r.finish("person.upsert", &id, &big, b"short".to_vec());
        }
        assert!(r.bytes() < 64 * 1024, "{} bytes kept", r.bytes());
        assert_eq!(
            r.seen("person.upsert", "u299", digest(b"u299")),
            Seen::Again(b"short".to_vec())
        );
        let mid = vec![b'y'; Replies::MAX_REPLY];
        for i in 0..3000 {
            let id = format!("d{i}");
            r.seen("door.open", &id, digest(id.as_bytes()));
            r.finish("door.open", &id, &mid, Vec::new());
        }
        assert!(r.bytes() <= Replies::MAX_BYTES, "{} bytes kept", r.bytes());
        assert!(r.kept() <= Replies::KEEP);
        // The oldest were forgotten: running again is all that is left to do.
        assert_eq!(r.seen("door.open", "d0", digest(b"d0")), Seen::New);
    }

    #[test]
    fn a_forgotten_run_can_be_retried() {
        let mut r = Replies::default();
        let d = digest(b"x");
        assert_eq!(r.seen("door.open", "a", d), Seen::New);
        r.forget("door.open", "a");
        assert_eq!(r.seen("door.open", "a", d), Seen::New);
    }
}
