//! What an access decision says: the reason code and the person's group.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The reason code of a decision, as published in `decision.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Granted,
    /// Nobody in the roster holds this credential.
    UnknownCredential,
    /// The person's validity ended (visitor pass expired).
    Expired,
    /// The person's validity has not begun yet.
    NotYetValid,
    /// The group may use this door, but not at this time.
    OutsideSchedule,
    /// The group may not use this door at all.
    NotAllowedHere,
    /// The person is on the watchlist.
    Watchlist,
    /// A second entry (or exit) without the matching exit (or entry).
    AntiPassback,
    /// The read was buffered through a link outage and arrived too late to act on.
    StaleRead,
    /// A face between the unknown and match thresholds: not sure enough to open.
    Uncertain,
    /// A face that failed a quality gate (too small, blurred, turned away, not live).
    NoUsableFace,
}

impl Reason {
    pub const ALL: [Reason; 11] = [
        Reason::Granted,
        Reason::UnknownCredential,
        Reason::Expired,
        Reason::NotYetValid,
        Reason::OutsideSchedule,
        Reason::NotAllowedHere,
        Reason::Watchlist,
        Reason::AntiPassback,
        Reason::StaleRead,
        Reason::Uncertain,
        Reason::NoUsableFace,
    ];

    pub fn granted(self) -> bool {
        self == Reason::Granted
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Granted => "granted",
            Reason::UnknownCredential => "unknown_credential",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::OutsideSchedule => "outside_schedule",
            Reason::NotAllowedHere => "not_allowed_here",
            Reason::Watchlist => "watchlist",
            Reason::AntiPassback => "anti_passback",
            Reason::StaleRead => "stale_read",
            Reason::Uncertain => "uncertain",
            Reason::NoUsableFace => "no_usable_face",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The groups the access rules are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    Resident,
    Staff,
    Visitor,
    /// Persons to be refused and reported (`watchlist_face`).
    Watchlist,
}

impl Group {
    pub const ALL: [Group; 4] = [
        Group::Resident,
        Group::Staff,
        Group::Visitor,
        Group::Watchlist,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Group::Resident => "resident",
            Group::Staff => "staff",
            Group::Visitor => "visitor",
            Group::Watchlist => "watchlist",
        }
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serde_names() {
        for r in Reason::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        for g in Group::ALL {
            assert_eq!(serde_json::to_value(g).unwrap(), g.as_str());
        }
    }
}
