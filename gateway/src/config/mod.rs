//! The one config file (TOML). `config/gateway.toml` documents every key; this
//! module reads it, and `gatewayd check` prints every problem with its key and line.
//!
//! - `locate`: key paths and their lines in the file.
//! - `validate`: checks across sections (duplicate ids, references, files).

mod locate;
mod validate;

pub use locate::KeyPath;

use chrono::FixedOffset;
use drivers::{DeviceId, Direction, DoorId, DriverConfig, ZoneId};
use serde::Deserialize;
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

/// `[mqtt]`: the link to the community platform.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSection {
    /// `mqtt://host:port` or `mqtts://host:port` (TLS).
    pub url: String,
    /// Defaults to `gatewayd-{gateway.id}`.
    pub client_id: Option<String>,
    pub username: Option<String>,
    /// A file holding the password (never the password itself in the config).
    pub password_file: Option<PathBuf>,
    /// CA certificate(s) to trust for `mqtts://` (PEM); default: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for brokers that require them.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    #[serde(default = "default_prefix")]
    pub topic_prefix: String,
    #[serde(default = "default_keep_alive")]
    pub keep_alive_s: u64,
    /// QoS 1 messages in flight before waiting for PUBACKs.
    #[serde(default = "default_inflight")]
    pub inflight: u16,
    /// Platform commands this gateway accepts; others are refused as `unauthorized`.
    #[serde(default = "default_commands")]
    pub commands: Vec<String>,
    /// Largest command payload accepted, in KiB (a person with face photos is large).
    #[serde(default = "default_max_command_kib")]
    pub max_command_kib: usize,
}

fn default_prefix() -> String {
    "cm".into()
}
fn default_keep_alive() -> u64 {
    15
}
fn default_inflight() -> u16 {
    500
}
fn default_max_command_kib() -> usize {
    8 * 1024
}
/// Every command the gateway knows.
pub const ALL_COMMANDS: [&str; 5] = [
    "person.upsert",
    "person.delete",
    "door.open",
    "alarm.ack",
    "door.release_hold",
];
fn default_commands() -> Vec<String> {
    ALL_COMMANDS.iter().map(|s| s.to_string()).collect()
}

/// `[console]`: the guards' web console. Served only when the section is present.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSection {
    /// `ip:port` to serve on; loopback by default, so exposing it is a decision.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Serve HTTPS with this certificate chain (PEM); `tls_key_file` goes with it.
    pub tls_cert_file: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub tls_key_file: Option<PathBuf>,
    /// A login lasts this long (a shift and some), then the user logs in again.
    #[serde(default = "default_session_hours")]
    pub session_hours: u32,
    /// Failed logins per user, and per client address, within `login_lockout_s`
    /// before further attempts are refused for the rest of that window.
    #[serde(default = "default_login_max_failures")]
    pub login_max_failures: u32,
    #[serde(default = "default_login_lockout_s")]
    pub login_lockout_s: u64,
    /// Largest upload (a face photo, a person with photos), in KiB.
    #[serde(default = "default_max_upload_kib")]
    pub max_upload_kib: usize,
    #[serde(default)]
    pub users: Vec<ConsoleUser>,
}

impl Default for ConsoleSection {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            tls_cert_file: None,
            tls_key_file: None,
            session_hours: default_session_hours(),
            login_max_failures: default_login_max_failures(),
            login_lockout_s: default_login_lockout_s(),
            max_upload_kib: default_max_upload_kib(),
            users: Vec::new(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_session_hours() -> u32 {
    12
}
fn default_login_max_failures() -> u32 {
    5
}
fn default_login_lockout_s() -> u64 {
    300
}
fn default_max_upload_kib() -> usize {
    8 * 1024
}

/// `[[console.users]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleUser {
    pub name: String,
    pub role: Role,
    /// argon2 PHC string from `gatewayd hash-password`.
    pub password_hash: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Guard,
    Admin,
}

/// What a door physically is; some rules depend on it (e-bikes in elevators).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DoorKind {
    #[default]
    Door,
    Gate,
    Turnstile,
    Barrier,
    Elevator,
    Lobby,
}

/// `[[doors]]`: anything that opens, with its zone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoorConfig {
    pub id: DoorId,
    pub name: Option<String>,
    pub zone: ZoneId,
    #[serde(default)]
    pub kind: DoorKind,
    /// How long the lock is released on a grant.
    #[serde(default = "default_open_ms")]
    pub open_ms: u32,
    /// Open longer than this raises `door_held_open`.
    #[serde(default = "default_held_open_s")]
    pub held_open_s: u32,
    /// The device whose lock output opens this door; default: every device bound to it.
    pub lock: Option<DeviceId>,
    /// Refuse a second entry (or exit) into the zone without the matching exit (or entry).
    #[serde(default)]
    pub anti_passback: bool,
    /// Whether the exit button releases the lock.
    #[serde(default = "yes")]
    pub exit_request_opens: bool,
}

fn default_open_ms() -> u32 {
    3000
}
fn default_held_open_s() -> u32 {
    30
}
fn yes() -> bool {
    true
}

impl DoorConfig {
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.id.as_str())
    }
}

/// `[[devices]]`: the keys every device has, plus its driver's own.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    pub id: DeviceId,
    pub name: Option<String>,
    /// The door this device reads for or drives.
    pub door: Option<DoorId>,
    pub direction: Option<Direction>,
    /// The zone of a device that is not at a door (sensors, an elevator's tag reader).
    pub zone: Option<ZoneId>,
    pub driver: DriverConfig,
}

/// `[retention]`: how long records are kept, and the disk they may use.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// Days to keep pass events (access, vehicle, tag, face).
    #[serde(default = "default_pass_days")]
    pub pass_days: u32,
    /// Days to keep input, device and system events.
    #[serde(default = "default_device_days")]
    pub device_days: u32,
    /// Days to keep alarms.
    #[serde(default = "default_alarm_days")]
    pub alarm_days: u32,
    /// Disk the journal may use, snapshots included; the oldest records go first.
    #[serde(default = "default_max_disk_mb")]
    pub max_disk_mb: u64,
    /// Unforwarded records above this count raise `buffer_high`.
    #[serde(default = "default_buffer_high")]
    pub buffer_high: u64,
    /// Seconds between retention runs (and backlog checks).
    #[serde(default = "default_check_every")]
    pub check_every_s: u64,
}

fn default_check_every() -> u64 {
    60
}

fn default_pass_days() -> u32 {
    90
}
fn default_device_days() -> u32 {
    30
}
fn default_alarm_days() -> u32 {
    365
}
fn default_max_disk_mb() -> u64 {
    4096
}
fn default_buffer_high() -> u64 {
    100_000
}

impl Default for RetentionSection {
    fn default() -> Self {
        Self {
            pass_days: default_pass_days(),
            device_days: default_device_days(),
            alarm_days: default_alarm_days(),
            max_disk_mb: default_max_disk_mb(),
            buffer_high: default_buffer_high(),
            check_every_s: default_check_every(),
        }
    }
}

/// `[faces]`: local face matching (camera frames → gallery) and enrollment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacesSection {
    /// Folder of the model files (from models/fetch.py); default: the checkout's
    /// `models/files`, or `$GATEWAYD_MODELS`.
    pub models_dir: Option<PathBuf>,
    /// ONNX Runtime threads per model.
    #[serde(default = "one")]
    pub threads: usize,
    /// Cosine similarity at or above which a face opens (grant).
    #[serde(default = "default_match_threshold")]
    pub match_threshold: f32,
    /// Below this the face is unknown; between the two it is `uncertain` and does not open.
    #[serde(default = "default_unknown_threshold")]
    pub unknown_threshold: f32,
    /// Detector score (0..1) a face needs.
    #[serde(default = "default_detect_score")]
    pub detect_score: f32,
    /// Smallest usable face: the shorter side of its box, in pixels.
    #[serde(default = "default_min_face_px")]
    pub min_face_px: f32,
    /// Least sharpness (variance of the Laplacian of the aligned face) accepted.
    #[serde(default = "default_min_sharpness")]
    pub min_sharpness: f32,
    /// Largest head turn accepted (nose offset / eye distance; ~0.5 at 45 degrees).
    #[serde(default = "default_max_yaw")]
    pub max_yaw: f32,
    /// Usable frames of one track that vote before a decision.
    #[serde(default = "default_votes")]
    pub votes: u32,
    /// After a decision for a person at a camera, the same person is not decided
    /// again there for this long (one decision per pass).
    #[serde(default = "default_repeat_s")]
    pub repeat_s: u32,
    /// Liveness gate: `off`, or `motion` (the face must move naturally across
    /// the voting frames; stops still photos; see README).
    #[serde(default)]
    pub liveness: LivenessMode,
    /// Up to this many templates the gallery is searched exactly; above it
    /// through a binary sketch index (exact ranking of the closest candidates).
    #[serde(default = "default_exact_max")]
    pub exact_max: usize,
    /// JPEG quality of the snapshots (1-100).
    #[serde(default = "default_snapshot_quality")]
    pub snapshot_quality: i32,
}

/// `[plates]`: plates read from the video of gate cameras that do not read
/// plates themselves; each read is a `plate` credential of the camera.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatesSection {
    /// Camera devices (`driver = "camera"`) whose frames are read for plates
    /// (instead of faces).
    pub cameras: Vec<drivers::DeviceId>,
    /// Least recogniser confidence (0..1) of a read.
    #[serde(default = "default_plate_confidence")]
    pub min_confidence: f32,
    /// The same plate at the same camera is not decided again for this long.
    #[serde(default = "default_plate_repeat_s")]
    pub repeat_s: u32,
}

fn default_plate_confidence() -> f32 {
    0.3
}
fn default_plate_repeat_s() -> u32 {
    30
}

/// `[faces] liveness`
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LivenessMode {
    Off,
    #[default]
    Motion,
}

fn one() -> usize {
    1
}
fn default_match_threshold() -> f32 {
    0.45
}
fn default_unknown_threshold() -> f32 {
    0.30
}
fn default_detect_score() -> f32 {
    0.6
}
fn default_min_face_px() -> f32 {
    60.0
}
fn default_min_sharpness() -> f32 {
    50.0
}
fn default_max_yaw() -> f32 {
    0.45
}
fn default_votes() -> u32 {
    3
}
fn default_repeat_s() -> u32 {
    10
}
fn default_exact_max() -> usize {
    50_000
}
fn default_snapshot_quality() -> i32 {
    85
}

impl Default for FacesSection {
    fn default() -> Self {
        Self {
            models_dir: None,
            threads: one(),
            match_threshold: default_match_threshold(),
            unknown_threshold: default_unknown_threshold(),
            detect_score: default_detect_score(),
            min_face_px: default_min_face_px(),
            min_sharpness: default_min_sharpness(),
            max_yaw: default_max_yaw(),
            votes: default_votes(),
            repeat_s: default_repeat_s(),
            liveness: LivenessMode::default(),
            exact_max: default_exact_max(),
            snapshot_quality: default_snapshot_quality(),
        }
    }
}

/// `[alarms]`: when unacknowledged alarms escalate, by severity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmsSection {
    /// Seconds before an unacknowledged critical alarm escalates; 0: never.
    #[serde(default = "default_escalate_critical")]
    pub escalate_critical_s: u64,
    #[serde(default = "default_escalate_major")]
    pub escalate_major_s: u64,
    #[serde(default)]
    pub escalate_minor_s: u64,
    /// How many escalations at most (each after the same delay again).
    #[serde(default = "default_escalate_repeat")]
    pub escalate_repeat: u32,
}

fn default_escalate_critical() -> u64 {
    120
}
fn default_escalate_major() -> u64 {
    600
}
fn default_escalate_repeat() -> u32 {
    3
}

impl Default for AlarmsSection {
    fn default() -> Self {
        Self {
            escalate_critical_s: default_escalate_critical(),
            escalate_major_s: default_escalate_major(),
            escalate_minor_s: 0,
            escalate_repeat: default_escalate_repeat(),
        }
    }
}

/// `[[rules]]`: changes the behaviour of one alarm type from its defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    #[serde(rename = "type")]
    pub alarm_type: crate::journal::AlarmType,
    pub enabled: Option<bool>,
    pub severity: Option<crate::journal::Severity>,
    /// The condition ending clears the alarm without an acknowledgement.
    pub auto_clear: Option<bool>,
    /// Overrides `[alarms]` for this type; 0: never escalate.
    pub escalate_after_s: Option<u64>,
    pub escalate_repeat: Option<u32>,
    /// welfare_no_activity: hours without a pass before the alarm (default 24).
    pub hours: Option<f64>,
    /// welfare_no_activity: the person tags watched (default ["elderly_alone"]).
    pub tags: Option<Vec<String>>,
    /// unknown_face: this many unknown faces at one door within `window_s` (default 3 in 60 s).
    pub count: Option<u32>,
    pub window_s: Option<u64>,
    /// ebike_in_elevator: hold the elevator (ElevatorHold output) until the e-bike leaves (default true).
    pub hold: Option<bool>,
    /// ebike_in_elevator: the voice prompt played.
    pub prompt: Option<String>,
}

/// `[[access]]`: which group may pass where and when. A person is let through
/// when some rule for their group covers the door (by door or zone) and its
/// schedule is open now.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// `resident`, `staff`, `visitor` (never `watchlist`).
    pub group: crate::engine::Group,
    /// Zones covered; `"*"` for all.
    #[serde(default)]
    pub zones: Vec<String>,
    /// Doors covered, in addition to the zones.
    #[serde(default)]
    pub doors: Vec<DoorId>,
    /// A `[[schedules]] id`; absent: at any time.
    pub schedule: Option<String>,
}

/// `[[schedules]]`: named weekly time windows in the estate's local time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub id: String,
    /// `"mon-fri 07:00-22:00"`, `"sat,sun 08:00-20:00"`, `"daily 00:00-24:00"`.
    pub windows: Vec<String>,
}

/// `[[persons]]`: persons seeded into the roster at start (the platform's
/// `person.upsert` and the console change them later).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonSeed {
    pub id: String,
    pub name: String,
    pub group: crate::engine::Group,
    #[serde(default)]
    pub tags: Vec<String>,
    /// `type:value`, e.g. `card:10001`, `plate:京A12345`.
    #[serde(default)]
    pub credentials: Vec<String>,
    pub valid_from: Option<chrono::DateTime<chrono::Utc>>,
    pub valid_until: Option<chrono::DateTime<chrono::Utc>>,
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
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base_dir.join(p)
        }
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
