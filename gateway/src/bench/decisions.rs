//! Access decision latency with a large roster: the engine alone, as it runs
//! between a card read and the lock command.

use anyhow::Result;
use chrono::Utc;
use drivers::{Credential, CredentialKind, CredentialRead, DeviceEvent, DeviceId, EventBody};
use rand::{Rng, SeedableRng};
use std::time::Instant;

use crate::config::Config;
use crate::contract::{Group, PersonId};
use crate::engine::{Engine, Person};

const CONFIG: &str = r#"
[gateway]
id = "bench"
estate = "bench"
data_dir = "."
[[doors]]
id = "main"
zone = "estate"
anti_passback = true
[[devices]]
id = "reader"
driver = "sim"
door = "main"
direction = "in"
[[schedules]]
id = "day"
windows = ["daily 00:00-24:00"]
[[access]]
group = "resident"
zones = ["estate"]
schedule = "day"
"#;

pub fn run(persons: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cfg = Config::parse(CONFIG, dir.path()).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let db = sled::Config::new().path(dir.path().join("db")).open()?;
    let mut engine = Engine::new(&cfg.engine(), &db)?;
    let t = Instant::now();
    for i in 0..persons {
        engine.roster.upsert(Person {
            id: PersonId::new(format!("p{i}")),
            name: format!("Resident {i}"),
            group: Group::Resident,
            tags: vec![],
            valid_from: None,
            valid_until: None,
            credentials: vec![Credential::parse(
                CredentialKind::Card,
                &(100_000 + i).to_string(),
            )?],
            faces: 0,
        })?;
    }
    let load = t.elapsed();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut h = hdrhistogram::Histogram::<u64>::new(3)?;
    let reads = 100_000;
    let device = DeviceId::new("reader");
    for _ in 0..reads {
        // One read in ten is a card nobody holds.
        let n = 100_000 + rng.gen_range(0..persons + persons / 10);
        let ev = DeviceEvent {
            device: device.clone(),
            at: Utc::now(),
            body: EventBody::Credential(CredentialRead::new(Credential {
                kind: CredentialKind::Card,
                value: n.to_string(),
            })),
            receipt: Default::default(),
        };
        let t = Instant::now();
        let fx = engine.on_device_event(ev, Utc::now());
        h.record(t.elapsed().as_micros() as u64)?;
        std::hint::black_box(fx);
    }
    println!(
        "decisions: roster of {persons} persons loaded in {:.2} s",
        load.as_secs_f64()
    );
    println!(
        "decisions: card read → decision + lock command: {}",
        super::percentiles(&h)
    );
    Ok(())
}
