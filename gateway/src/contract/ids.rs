//! The gateway's own names for places and people. Devices are named by the
//! drivers (`drivers::DeviceId`); doors, zones and persons exist only here.

drivers::name_type!(
    /// A door, gate, turnstile or barrier as named in `[[doors]] id`.
    DoorId
);
drivers::name_type!(
    /// An area of the estate (`[[doors]] zone`): anti-passback and schedules apply per zone.
    ZoneId
);
drivers::name_type!(
    /// A person of the roster (resident, staff, visitor, watchlist entry).
    PersonId
);
