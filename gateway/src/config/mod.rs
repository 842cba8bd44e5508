//! The one config file (TOML). `config/gateway.toml` documents every key; this
//! module reads it, and `gatewayd check` prints every problem with its key and line.
//!
//! Each component owns its section and the checks of its keys (`uplink`'s
//! `[mqtt]`, `console`'s `[console]`, `vision`'s `[faces]`/`[plates]`,
//! `journal`'s `[retention]`, `engine`'s doors, devices' places, access,
//! schedules, persons, alarms and rules), as each driver owns its
//! `DriverConfig` variant. This module parses the file, places each problem at
//! its line, and checks what no one section can: references between sections.
//!
//! - `locate`: key paths and their lines in the file.
//! - `validate`: the sections' own checks, and the references between them.

mod locate;
mod validate;

pub use locate::KeyPath;

use chrono::FixedOffset;
use drivers::{DeviceId, Direction, DriverConfig};
use serde::Deserialize;

use crate::contract::{DoorId, ZoneId};
use crate::settings::resolve;

// Each section's type lives with its component; re-exported for the file's readers.
pub use crate::console::{ConsoleSection, ConsoleUser, Role};
pub use crate::engine::config::{
    AccessRule, AlarmsSection, DeviceConfig, DoorConfig, DoorKind, EngineConfig, PersonSeed,
    RosterSection, RuleConfig, ScheduleConfig,
};
pub use crate::journal::RetentionSection;
pub use crate::uplink::{Identity, MqttSection};
pub use crate::vision::config::{FacesSection, LivenessMode, PlatesSection};
use std::fmt;
use std::path::{Path, PathBuf};

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub gateway: GatewaySection,
    pub mqtt: Option<MqttSection>,
    /// Absent: no console is served.
    pub console: Option<ConsoleSection>,
    #[serde(default)]
    pub doors: Vec<DoorConfig>,
    /// Parsed from the raw tables in a second step, so errors name the exact key.
    #[serde(default, rename = "devices")]
    raw_devices: Vec<toml::Table>,
    #[serde(skip)]
    pub devices: Vec<DeviceConfig>,
    #[serde(default)]
    pub retention: RetentionSection,
    /// Face matching on camera frames and face enrollment; absent: off.
    pub faces: Option<FacesSection>,
    /// Plate reading on the frames of gate cameras; absent: off.
    pub plates: Option<PlatesSection>,
    #[serde(default)]
    pub alarms: AlarmsSection,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    #[serde(default)]
    pub access: Vec<AccessRule>,
    #[serde(default)]
    pub schedules: Vec<ScheduleConfig>,
    #[serde(default)]
    pub persons: Vec<PersonSeed>,
    #[serde(default)]
    pub roster: RosterSection,
    /// Where relative paths in the file are resolved from (the file's folder).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// `[gateway]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// This gateway's id, unique within the estate; part of every MQTT topic.
    pub id: String,
    /// The estate's id; part of every MQTT topic.
    pub estate: String,
    /// Where the journal, roster and keys are kept.
    pub data_dir: PathBuf,
    /// The estate's local time offset, for schedules (China: +08:00).
    #[serde(default = "default_offset", deserialize_with = "de_offset")]
    pub utc_offset: FixedOffset,
    /// MB of the store's page cache (sled's default of 1 GB would fill an edge
    /// box's memory with journal pages over time).
    #[serde(default = "default_store_cache_mb")]
    pub store_cache_mb: u64,
}

fn default_store_cache_mb() -> u64 {
    16
}

fn default_offset() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"))
}

fn de_offset<'de, D: serde::Deserializer<'de>>(d: D) -> Result<FixedOffset, D::Error> {
    let s = String::deserialize(d)?;
    s.parse::<FixedOffset>()
        .map_err(|_| serde::de::Error::custom(format!("`{s}` is not an offset like +08:00")))
}

/// One problem in the config file.
#[derive(Debug, Clone)]
pub struct ConfigError {
    pub path: KeyPath,
    pub line: Option<usize>,
    pub message: String,
}

/// Every problem found, with the file they are in.
#[derive(Debug, Clone)]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match e.line {
                Some(line) => write!(
                    f,
                    "{}:{line}: {}: {}",
                    self.file.display(),
                    e.path,
                    e.message
                )?,
                None => write!(f, "{}: {}: {}", self.file.display(), e.path, e.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Reads and checks the file; all problems are reported at once.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            file: path.to_owned(),
            errors: vec![ConfigError {
                path: KeyPath::root(),
                line: None,
                message: format!("cannot read the file: {e}"),
            }],
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, &base).map_err(|errors| ConfigErrors {
            file: path.to_owned(),
            errors,
        })
    }

    /// Parses config text; relative paths are resolved against `base_dir`.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Config, Vec<ConfigError>> {
        let doc = match toml_edit::ImDocument::parse(text) {
            Ok(doc) => doc,
            Err(e) => {
                return Err(vec![ConfigError {
                    path: KeyPath::root(),
                    line: e.span().map(|s| locate::line_of(text, s.start)),
                    message: format!(
                        "not valid TOML: {}",
                        e.message().trim().lines().collect::<Vec<_>>().join("; ")
                    ),
                }])
            }
        };
        let at = |path: KeyPath, message: String| ConfigError {
            line: locate::locate(&doc, text, &path),
            path,
            // toml appends "in `key`" on further lines; the path already says it.
            message: message.lines().next().unwrap_or_default().trim().to_owned(),
        };
        let value: toml::Value = match toml::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                return Err(vec![at(
                    KeyPath::root(),
                    format!("not valid TOML: {}", e.message()),
                )])
            }
        };
        let mut config: Config = match serde_path_to_error::deserialize(value) {
            Ok(c) => c,
            Err(e) => {
                let path = KeyPath::from_serde(&KeyPath::root(), e.path());
                let message = e.inner().to_string();
                let path = refine_unknown_field(path, &message);
                return Err(vec![at(path, message)]);
            }
        };
        config.base_dir = base_dir.to_owned();
        let mut errors = Vec::new();
        for (i, table) in std::mem::take(&mut config.raw_devices)
            .into_iter()
            .enumerate()
        {
            match parse_device(table, &KeyPath::root().key("devices").index(i)) {
                Ok(d) => config.devices.push(d),
                Err((path, message)) => errors.push(at(path, message)),
            }
        }
        for (path, message) in validate::check(&config) {
            errors.push(at(path, message));
        }
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors)
        }
    }

    /// A path from the file, resolved against the file's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        resolve(&self.base_dir, p)
    }

    /// What the engine is built from.
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            doors: self.doors.clone(),
            devices: self.devices.clone(),
            access: self.access.clone(),
            schedules: self.schedules.clone(),
            persons: self.persons.clone(),
            alarms: self.alarms.clone(),
            rules: self.rules.clone(),
            utc_offset: self.gateway.utc_offset,
            faces: self
                .faces
                .as_ref()
                .map(|f| crate::engine::FaceRules::new(f.match_threshold, f.unknown_threshold)),
        }
    }

    /// Who this gateway is on the platform's topics.
    pub fn identity(&self) -> Identity {
        Identity {
            estate: self.gateway.estate.clone(),
            gateway: self.gateway.id.clone(),
            base_dir: self.base_dir.clone(),
        }
    }

    /// Whether the vision is wanted: faces, or plates read from video.
    pub fn wants_vision(&self) -> bool {
        self.faces.is_some() || self.plates.is_some()
    }

    /// The camera devices.
    pub fn cameras(&self) -> usize {
        self.devices
            .iter()
            .filter(|d| d.driver.name() == "camera")
            .count()
    }

    pub fn door(&self, id: &DoorId) -> Option<&DoorConfig> {
        self.doors.iter().find(|d| &d.id == id)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.resolve(&self.gateway.data_dir)
    }
}

/// serde reports an unknown field at its table; point at the field itself.
fn refine_unknown_field(path: KeyPath, message: &str) -> KeyPath {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((field, _)) = rest.split_once('`') {
            if path.0.last() != Some(&locate::Seg::Key(field.to_owned())) {
                return path.key(field);
            }
        }
    }
    path
}

/// Splits a `[[devices]]` table into the common keys and the driver's own.
fn parse_device(mut table: toml::Table, path: &KeyPath) -> Result<DeviceConfig, (KeyPath, String)> {
    fn take_str(
        t: &mut toml::Table,
        key: &str,
        path: &KeyPath,
    ) -> Result<Option<String>, (KeyPath, String)> {
        match t.remove(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(other) => Err((
                path.key(key),
                format!("must be a string, found {}", other.type_str()),
            )),
        }
    }
    let id = take_str(&mut table, "id", path)?
        .ok_or_else(|| (path.clone(), "missing key `id`".to_string()))?;
    let name = take_str(&mut table, "name", path)?;
    let door = take_str(&mut table, "door", path)?.map(DoorId);
    let zone = take_str(&mut table, "zone", path)?.map(ZoneId);
    let direction = match take_str(&mut table, "direction", path)?.as_deref() {
        None => None,
        Some("in") => Some(Direction::In),
        Some("out") => Some(Direction::Out),
        Some(other) => {
            return Err((
                path.key("direction"),
                format!("`{other}` is not `in` or `out`"),
            ));
        }
    };
    if !table.contains_key("driver") {
        return Err((path.clone(), "missing key `driver`".into()));
    }
    let driver: DriverConfig = serde_path_to_error::deserialize(toml::Value::Table(table))
        .map_err(|e| {
            let p = KeyPath::from_serde(path, e.path());
            let message = e.inner().to_string();
            if message.starts_with("unknown variant") {
                return (path.key("driver"), format!("unknown driver: {message}"));
            }
            (refine_unknown_field(p, &message), message)
        })?;
    Ok(DeviceConfig {
        id: DeviceId(id),
        name,
        door,
        direction,
        zone,
        driver,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mutated copies of the shipped configs (the fuzz target's seeds) give
    /// errors naming keys, never a panic.
    #[test]
    fn mutated_configs_never_panic() {
        use rand::{Rng, SeedableRng};
        let seeds = [
            include_str!("../../../config/demo.toml"),
            include_str!("../../../config/gateway.toml"),
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for i in 0..600 {
            let mut chars: Vec<char> = seeds[i % 2].chars().collect();
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..chars.len());
                match rng.gen_range(0..3) {
                    0 => {
                        chars.remove(at);
                    }
                    1 => chars.insert(
                        at,
                        ['"', '[', ']', '=', '\n', '1', 'x', '#', '.'][rng.gen_range(0..9)],
                    ),
                    _ => {
                        let other = rng.gen_range(0..chars.len());
                        chars.swap(at, other);
                    }
                }
            }
            let text: String = chars.into_iter().collect();
            if let Err(errors) = Config::parse(&text, Path::new("/nonexistent")) {
                assert!(!errors.is_empty());
                assert!(errors.iter().all(|e| !e.message.is_empty()));
            }
        }
    }
}
