//! Commands from outside (the platform's `P/cmd/{name}`, the console's API)
//! parsed from their JSON shapes and carried out the same way: the engine for
//! state, the face gallery for photos. A malformed command changes nothing and
//! gets an error naming the field that was wrong.
//!
//! The face gallery plugs in through [`FaceEnroller`], defined here where it is
//! used (the vision implements it; the daemon passes it in).

use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use drivers::{Credential, CredentialKind};
use futures::future::BoxFuture;
use serde::Deserialize;
use std::sync::{Arc, RwLock};
use uuid::Uuid;

use crate::contract::ids::{check_id, clean_text, TextError};
use crate::contract::{CommandError, CommandName, DoorId, ErrorCode, Group, PersonId};
pub use crate::engine::CommandOk;
use crate::engine::{Actor, Command, EngineHandle, Person};

/// Bounds on what a stranger writes: every string and list of a command is
/// bounded, so that no record, reply or roster entry grows without limit.
/// `request_id`: characters at most (longer ones are refused, never echoed).
pub const MAX_REQUEST_ID: usize = 128;
/// `by`: characters at most.
pub const MAX_BY: usize = 64;
/// An acknowledgement's `note`: characters at most.
pub const MAX_NOTE: usize = 500;
/// A person's display name: characters at most.
pub const MAX_NAME: usize = 100;
/// Face photos in one command at most.
pub const MAX_FACES: usize = 10;
/// Tags of a person at most.
pub const MAX_TAGS: usize = 16;

impl From<TextError> for CommandError {
    fn from(e: TextError) -> Self {
        CommandError::invalid(e.to_string())
    }
}

/// Face templates computed from checked photos, not stored yet.
pub struct PreparedFaces {
    pub templates: Vec<Vec<f32>>,
    pub photos: Vec<Bytes>,
}

/// Turns enrollment photos into gallery templates. Photos are checked and
/// embedded first (`prepare`), stored only when the whole command is valid
/// (`commit`), so that a refused command stores nothing.
pub trait FaceEnroller: Send + Sync {
    /// Checks every photo (exactly one usable face each) and embeds it.
    fn prepare<'a>(
        &'a self,
        person: &'a PersonId,
        photos: Vec<Bytes>,
    ) -> BoxFuture<'a, Result<PreparedFaces, CommandError>>;
    /// Adds the templates to the person's; returns how many the person has now.
    fn commit<'a>(
        &'a self,
        person: &'a PersonId,
        faces: PreparedFaces,
    ) -> BoxFuture<'a, Result<u32, CommandError>>;
    /// Forgets every template of a person.
    fn remove<'a>(&'a self, person: &'a PersonId) -> BoxFuture<'a, Result<(), CommandError>>;
    /// The match threshold for the gallery as it is now, when it is computed
    /// from a false-accept target (`[faces] false_accept_rate`); `None` keeps
    /// the engine's.
    fn match_threshold(&self) -> BoxFuture<'_, Option<f32>> {
        Box::pin(async { None })
    }
}

/// Where the face enroller is plugged in: set when the gateway starts with
/// `[faces]`; a slot so that a test can plug in one of its own.
pub type FaceSlot = Arc<RwLock<Option<Arc<dyn FaceEnroller>>>>;

/// The person of `person.upsert` and `PUT /api/persons/{id}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonIn {
    pub id: String,
    pub name: String,
    pub group: Group,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub valid_from: Option<DateTime<Utc>>,
    #[serde(default)]
    pub valid_until: Option<DateTime<Utc>>,
    #[serde(default)]
    pub credentials: Vec<CredentialIn>,
    /// Face photos, base64 JPEG.
    #[serde(default)]
    pub faces: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialIn {
    #[serde(rename = "type")]
    pub kind: CredentialKind,
    pub value: String,
}

/// A parsed command, ready to run.
#[derive(Debug, Clone)]
pub enum Request {
    Upsert {
        person: Person,
        photos: Vec<Bytes>,
        by: Actor,
    },
    Engine(Command),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpsertMsg {
    request_id: Option<String>,
    person: PersonIn,
    by: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteMsg {
    request_id: Option<String>,
    id: String,
    by: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DoorOpenMsg {
    request_id: Option<String>,
    door: String,
    by: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlarmAckMsg {
    request_id: Option<String>,
    alarm: Uuid,
    by: Option<String>,
    #[serde(default)]
    note: String,
}

/// The `request_id` of a payload, read leniently so that even a broken command
/// can be answered with its id.
pub fn request_id(payload: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Id {
        request_id: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Id>(payload).ok()?.request_id? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn invalid(message: impl Into<String>) -> CommandError {
    CommandError::invalid(message)
}

/// Deserialises with the path of the first wrong field in the message.
fn from_json<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, CommandError> {
    let de = &mut serde_json::Deserializer::from_slice(payload);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        if path == "." || path.is_empty() {
            invalid(format!("{}", e.inner()))
        } else {
            invalid(format!("{path}: {}", e.inner()))
        }
    })
}

/// `by` of a platform command: free text, bounded; "platform" when absent.
fn platform_actor(by: Option<String>) -> Result<Actor, CommandError> {
    let by = match by {
        Some(by) => clean_text("by", &by, MAX_BY, false)?,
        None => String::new(),
    };
    Ok(Actor::platform(if by.is_empty() {
        "platform"
    } else {
        &by
    }))
}

fn check_request_id(id: &Option<String>) -> Result<(), CommandError> {
    match id {
        Some(id) if id.chars().count() > MAX_REQUEST_ID => Err(invalid(format!(
            "request_id: longer than {MAX_REQUEST_ID} characters"
        ))),
        _ => Ok(()),
    }
}

/// Parses a platform command by name. The actor is `platform/{by}`, or
/// `platform/platform` when the payload has no `by`.
pub fn parse_platform(name: &str, payload: &[u8]) -> Result<Request, CommandError> {
    let Some(name) = CommandName::parse(name) else {
        return Err(CommandError::new(
            ErrorCode::UnknownCommand,
            format!("unknown command `{name}`"),
        ));
    };
    match name {
        CommandName::PersonUpsert => {
            let m: UpsertMsg = from_json(payload)?;
            check_request_id(&m.request_id)?;
            let by = platform_actor(m.by)?;
            let (person, photos) = person_from(m.person, "person.")?;
            Ok(Request::Upsert { person, photos, by })
        }
        CommandName::PersonDelete => {
            let m: DeleteMsg = from_json(payload)?;
            check_request_id(&m.request_id)?;
            check_id("id", &m.id)?;
            Ok(Request::Engine(Command::PersonDelete {
                id: PersonId::new(m.id),
                by: platform_actor(m.by)?,
            }))
        }
        CommandName::DoorOpen => {
            let m: DoorOpenMsg = from_json(payload)?;
            check_request_id(&m.request_id)?;
            check_id("door", &m.door)?;
            Ok(Request::Engine(Command::DoorOpen {
                door: DoorId::new(m.door),
                by: platform_actor(m.by)?,
            }))
        }
        CommandName::DoorReleaseHold => {
            let m: DoorOpenMsg = from_json(payload)?;
            check_request_id(&m.request_id)?;
            check_id("door", &m.door)?;
            Ok(Request::Engine(Command::ReleaseHold {
                door: DoorId::new(m.door),
                by: platform_actor(m.by)?,
            }))
        }
        CommandName::AlarmAck => {
            let m: AlarmAckMsg = from_json(payload)?;
            check_request_id(&m.request_id)?;
            Ok(Request::Engine(Command::AlarmAck {
                alarm: m.alarm,
                by: platform_actor(m.by)?,
                note: clean_text("note", &m.note, MAX_NOTE, true)?,
            }))
        }
    }
}

/// Checks and normalises a person; `prefix` names the field path in errors.
pub fn person_from(p: PersonIn, prefix: &str) -> Result<(Person, Vec<Bytes>), CommandError> {
    check_id(&format!("{prefix}id"), &p.id)?;
    let name = clean_text(&format!("{prefix}name"), &p.name, MAX_NAME, false)?;
    if name.is_empty() {
        return Err(invalid(format!("{prefix}name: must not be empty")));
    }
    if p.faces.len() > MAX_FACES {
        return Err(invalid(format!(
            "{prefix}faces: at most {MAX_FACES} photos per command, got {}",
            p.faces.len()
        )));
    }
    if p.tags.len() > MAX_TAGS {
        return Err(invalid(format!(
            "{prefix}tags: at most {MAX_TAGS} tags, got {}",
            p.tags.len()
        )));
    }
    let mut credentials = Vec::with_capacity(p.credentials.len());
    for (i, c) in p.credentials.into_iter().enumerate() {
        let cred = Credential::parse(c.kind, &c.value)
            .map_err(|e| invalid(format!("{prefix}credentials[{i}]: {e}")))?;
        credentials.push(cred);
    }
    let mut photos = Vec::with_capacity(p.faces.len());
    for (i, f) in p.faces.iter().enumerate() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(f.trim())
            .map_err(|e| invalid(format!("{prefix}faces[{i}]: not base64: {e}")))?;
        photos.push(Bytes::from(bytes));
    }
    for (i, t) in p.tags.iter().enumerate() {
        check_id(&format!("{prefix}tags[{i}]"), t)?;
    }
    Ok((
        Person {
            id: PersonId::new(p.id),
            name,
            group: p.group,
            tags: p.tags,
            valid_from: p.valid_from,
            valid_until: p.valid_until,
            credentials,
            faces: 0,
        },
        photos,
    ))
}

/// Runs commands: the engine, and the face gallery when there is one.
#[derive(Clone)]
pub struct Controller {
    pub engine: EngineHandle,
    pub faces: FaceSlot,
    /// `[roster] max_credentials_per_person`.
    pub max_credentials: usize,
}

impl Controller {
    /// `enroller`: the face gallery, when the gateway matches faces.
    pub fn new(engine: EngineHandle, enroller: Option<Arc<dyn FaceEnroller>>) -> Self {
        Self {
            engine,
            faces: Arc::new(RwLock::new(enroller)),
            max_credentials: crate::engine::config::DEFAULT_MAX_CREDENTIALS,
        }
    }

    /// With `[roster] max_credentials_per_person`.
    pub fn with_max_credentials(mut self, n: usize) -> Self {
        self.max_credentials = n;
        self
    }

    fn enroller(&self) -> Option<Arc<dyn FaceEnroller>> {
        self.faces.read().ok().and_then(|g| g.clone())
    }

    /// The gallery changed: a threshold computed from a false-accept target
    /// follows its size.
    async fn recalibrate(&self, enroller: &dyn FaceEnroller) {
        if let Some(t) = enroller.match_threshold().await {
            self.engine.set_face_match_threshold(t).await;
        }
    }

    pub async fn execute(&self, req: Request) -> Result<CommandOk, CommandError> {
        match req {
            Request::Engine(cmd) => {
                let delete = match &cmd {
                    Command::PersonDelete { id, .. } => Some(id.clone()),
                    _ => None,
                };
                let out = self.engine.command(cmd).await?;
                if let (Some(id), Some(faces)) = (delete, self.enroller()) {
                    faces.remove(&id).await?;
                    self.recalibrate(&*faces).await;
                }
                Ok(out)
            }
            Request::Upsert {
                mut person,
                photos,
                by,
            } => {
                if person.credentials.len() > self.max_credentials {
                    return Err(invalid(format!(
                        "credentials: at most {} per person ([roster] max_credentials_per_person), got {}",
                        self.max_credentials,
                        person.credentials.len()
                    )));
                }
                if photos.is_empty() {
                    return self
                        .engine
                        .command(Command::PersonUpsert { person, by })
                        .await;
                }
                let enroller = self.enroller().ok_or_else(|| {
                    invalid("face photos given, but face matching is not enabled on this gateway ([faces])")
                })?;
                // Nothing is stored for a refused command: the photos are
                // checked, then the person, and only then the templates kept.
                let prepared = enroller.prepare(&person.id, photos).await?;
                self.engine.check_upsert(person.clone()).await?;
                let existed = self.engine.person(person.id.clone()).await.ok().flatten();
                person.faces = enroller.commit(&person.id, prepared).await?;
                let id = person.id.clone();
                let out = self
                    .engine
                    .command(Command::PersonUpsert { person, by })
                    .await;
                // Refused after all (another command took a credential in
                // between): a new person's templates go again.
                if out.is_err() && existed.is_none() {
                    if let Err(e) = enroller.remove(&id).await {
                        tracing::error!(person = %id, "face templates of a refused person not removed: {e}");
                    }
                }
                self.recalibrate(&*enroller).await;
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_contract_shapes() {
        let r = parse_platform(
            "person.upsert",
            r#"{"request_id":"r1","person":{"id":"p1","name":"Li Wei","group":"resident","tags":["elderly_alone"],"credentials":[{"type":"card","value":"00123"},{"type":"plate","value":"京A·12345"}],"faces":[]}}"#.as_bytes(),
        )
        .unwrap();
        match r {
            Request::Upsert { person, photos, by } => {
                assert_eq!(person.credentials[0].value, "123");
                assert_eq!(person.credentials[1].value, "京A12345");
                assert!(photos.is_empty());
                assert_eq!(by.to_string(), "platform/platform");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_platform(
                "door.open",
                br#"{"request_id":"r2","door":"north","by":"ops"}"#
            ),
            Ok(Request::Engine(Command::DoorOpen { .. }))
        ));
        assert!(matches!(
            parse_platform(
                "alarm.ack",
                br#"{"request_id":"r3","alarm":"0192f1a0-0000-7000-8000-000000000000","by":"ops","note":"ok"}"#
            ),
            Ok(Request::Engine(Command::AlarmAck { .. }))
        ));
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse_platform("door.open", br#"{"request_id":"r","door":5}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::Invalid);
        assert!(e.message.starts_with("door:"), "{}", e.message);
        let e = parse_platform(
            "person.upsert",
            br#"{"request_id":"r","person":{"id":"p","name":"n","group":"resident","credentials":[{"type":"badge","value":"1"}]}}"#,
        )
        .unwrap_err();
        assert!(
            e.message.contains("person.credentials[0].type"),
            "{}",
            e.message
        );
        let e = parse_platform(
            "person.upsert",
            br#"{"person":{"id":"p","name":"n","group":"resident","credentials":[{"type":"card","value":"x1"}]}}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("person.credentials[0]"), "{}", e.message);
        let e = parse_platform(
            "person.upsert",
            br#"{"person":{"id":"p","name":"n","group":"resident","faces":["@@"]}}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("faces[0]: not base64"), "{}", e.message);
        assert_eq!(
            parse_platform("self.destruct", b"{}").unwrap_err().code,
            ErrorCode::UnknownCommand
        );
        assert_eq!(
            parse_platform("door.open", b"{not json").unwrap_err().code,
            ErrorCode::Invalid
        );
        let e = parse_platform("alarm.ack", br#"{"alarm":"nope","by":"x"}"#).unwrap_err();
        assert!(e.message.starts_with("alarm:"), "{}", e.message);
    }

    /// Mutated valid commands (the fuzz target's seeds) never panic the parser.
    #[test]
    fn mutated_commands_never_panic() {
        use rand::{Rng, SeedableRng};
        let seeds: [&[u8]; 3] = [
            br#"{"request_id":"r1","person":{"id":"p1","name":"Li","group":"resident","tags":["a"],"valid_until":"2026-01-01T00:00:00Z","credentials":[{"type":"card","value":"0012"},{"type":"tag","value":"e2:00"}],"faces":["AAAA"]}}"#,
            br#"{"request_id":"r2","door":"main","by":"ops"}"#,
            br#"{"request_id":"r3","alarm":"0192f1a0-0000-7000-8000-000000000000","by":"ops","note":"x"}"#,
        ];
        let names = [
            "person.upsert",
            "person.delete",
            "door.open",
            "alarm.ack",
            "bogus",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        for i in 0..20_000 {
            let mut p = seeds[i % seeds.len()].to_vec();
            for _ in 0..rng.gen_range(1..6) {
                let at = rng.gen_range(0..p.len());
                match rng.gen_range(0..3) {
                    0 => p[at] = rng.gen(),
                    1 => {
                        p.remove(at);
                    }
                    _ => {
                        let junk = b"{}[]\",:0\xff";
                        p.insert(at, junk[rng.gen_range(0..junk.len())]);
                    }
                }
                if p.is_empty() {
                    break;
                }
            }
            let _ = request_id(&p);
            if let Ok(Request::Upsert { person, .. }) = parse_platform(names[i % names.len()], &p) {
                for c in &person.credentials {
                    assert_eq!(&Credential::parse(c.kind, &c.value).unwrap(), c);
                }
            }
        }
    }

    #[test]
    fn strangers_strings_are_bounded_and_named() {
        let refused = |name: &str, payload: String| {
            let e = parse_platform(name, payload.as_bytes()).unwrap_err();
            assert_eq!(e.code, ErrorCode::Invalid, "{}", e.message);
            e.message
        };
        let long = "x".repeat(1024 * 1024);
        let m = refused("door.open", format!(r#"{{"door":"main","by":"{long}"}}"#));
        assert_eq!(m, "by: longer than 64 characters");
        let m = refused(
            "door.open",
            format!(r#"{{"request_id":"{long}","door":"main"}}"#),
        );
        assert_eq!(m, "request_id: longer than 128 characters");
        let m = refused(
            "alarm.ack",
            format!(r#"{{"alarm":"0192f1a0-0000-7000-8000-000000000000","note":"{long}"}}"#),
        );
        assert_eq!(m, "note: longer than 500 characters");
        let m = refused("door.open", r#"{"door":"ma\u200bin"}"#.into());
        assert!(
            m.starts_with("door: must be 1-64 characters of ASCII"),
            "{m}"
        );
        let m = refused("person.delete", r#"{"id":"r\u0000"}"#.into());
        assert!(m.starts_with("id: must be"), "{m}");
        let person = |extra: &str| {
            format!(r#"{{"person":{{"id":"p1","name":"N","group":"resident"{extra}}}}}"#)
        };
        let tags = [r#""t""#; 17].join(",");
        let m = refused("person.upsert", person(&format!(r#","tags":[{tags}]"#)));
        assert_eq!(m, "person.tags: at most 16 tags, got 17");
        let m = refused("person.upsert", person(r#","tags":["gu\u0430rd"]"#));
        assert!(m.starts_with("person.tags[0]: must be"), "{m}");
        let faces = [r#""AAAA""#; 11].join(",");
        let m = refused("person.upsert", person(&format!(r#","faces":[{faces}]"#)));
        assert_eq!(m, "person.faces: at most 10 photos per command, got 11");
        let m = refused(
            "person.upsert",
            r#"{"person":{"id":"p1","name":"\u0007 ","group":"resident"}}"#.into(),
        );
        assert_eq!(m, "person.name: must not be empty");
        // Free text is kept, NFC and without controls.
        match parse_platform(
            "door.open",
            br#"{"door":"main","by":"\u738b\u4fdd\u5b89\u001b[2J"}"#,
        ) {
            Ok(Request::Engine(Command::DoorOpen { by, .. })) => {
                assert_eq!(by.to_string(), "platform/王保安[2J")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn request_id_is_read_from_broken_commands() {
        assert_eq!(
            request_id(br#"{"request_id":"abc","door":5}"#).as_deref(),
            Some("abc")
        );
        assert_eq!(request_id(br#"{"request_id":7}"#).as_deref(), Some("7"));
        assert_eq!(request_id(b"garbage"), None);
    }
}
