//! The console's JSON API. Reads come from the engine (doors, devices, open
//! alarms, persons) and the journal (events, past alarms, snapshots); writes
//! go through the [`Controller`](crate::control::Controller), the same path as
//! the platform's commands, with the user as `console/{name}`, so every change
//! is journaled with who made it.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

use super::auth::{Admin, Session};
use super::error::{parse_json, read_body, require_json, ApiError};
use super::search::{self, AlarmParams, AlarmQuery, Cursor, EventParams, EventQuery};
use super::AppState;
use crate::contract::{AlarmRecord, DoorId, PersonId, Record};
use crate::control::{self, PersonIn, Request};
use crate::engine::{Actor, Command, Person, Stopped};

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::invalid(format!("bad query string: {}", e.body_text())))
}

impl From<Stopped> for ApiError {
    fn from(_: Stopped) -> Self {
        ApiError::unavailable()
    }
}

/// Records as their payload JSON, with where the next page starts.
#[derive(Serialize)]
pub struct PageOut {
    pub records: Vec<serde_json::Value>,
    pub next: Option<Cursor>,
}

fn page_out(records: Vec<Record>, next: Option<Cursor>) -> PageOut {
    PageOut {
        records: records
            .iter()
            .filter_map(|r| serde_json::from_slice(&r.to_json().ok()?).ok())
            .collect(),
        next,
    }
}

/// `GET /healthz`: 200 while the engine answers, 503 otherwise.
pub async fn healthz(State(st): State<AppState>) -> Response {
    let engine = tokio::time::timeout(Duration::from_secs(2), st.engine.doors())
        .await
        .is_ok_and(|r| r.is_ok());
    let journal = st.journal.health();
    // `degraded`: the gateway still decides and opens doors, but records are
    // not being made durable (or are refused): someone must look at the disk.
    let state = match (engine, journal.is_ok()) {
        (false, _) => "down",
        (true, false) => "degraded",
        (true, true) => "ok",
    };
    let body = serde_json::json!({
        "ok": state == "ok",
        "state": state,
        "reason": journal.reason(),
        "engine": engine,
        "journal_seq": st.journal.last_committed(),
        "journal_refused": st.journal.refused_total(),
        "uplink_connected": st.uplink.as_ref().map(|u| u.connected()),
    });
    let status = if state == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `GET /api/events?since=&before=&limit=&kind=&person=&plate=&door=&from=&to=`
pub async fn events(
    _s: Session,
    State(st): State<AppState>,
    q: Result<Query<EventParams>, QueryRejection>,
) -> Result<Json<PageOut>, ApiError> {
    let q = EventQuery::parse(&query(q)?)?;
    let journal = st.journal.clone();
    let page = tokio::task::spawn_blocking(move || search::events(&journal, &q))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(page_out(page.records, page.next)))
}

/// `GET /api/alarms?state=open|all|raised|acked|cleared|escalated&type=&before=&limit=`
pub async fn alarms(
    _s: Session,
    State(st): State<AppState>,
    q: Result<Query<AlarmParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    match AlarmQuery::parse(&query(q)?)? {
        AlarmQuery::Open => Ok(Json(OpenAlarms {
            alarms: st.engine.open_alarms().await?,
        })
        .into_response()),
        AlarmQuery::History {
            state,
            alarm_type,
            before,
            limit,
        } => {
            let journal = st.journal.clone();
            let page = tokio::task::spawn_blocking(move || {
                search::alarm_history(&journal, state, alarm_type, before, limit)
            })
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
            Ok(Json(page_out(page.records, page.next)).into_response())
        }
    }
}

/// Open alarms, most severe first, then oldest first.
#[derive(Serialize)]
pub struct OpenAlarms {
    pub alarms: Vec<AlarmRecord>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AckIn {
    #[serde(default)]
    note: String,
}

/// Parses an optional JSON body (an empty body is the default).
async fn optional_json<T: serde::de::DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<T, ApiError> {
    let body = read_body(headers, body, super::JSON_LIMIT).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    require_json(headers)?;
    parse_json(&body)
}

fn done() -> Response {
    Json(serde_json::json!({"ok": true})).into_response()
}

/// `POST /api/alarms/{id}/ack` `{"note"}`
pub async fn ack(
    s: Session,
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let alarm = Uuid::parse_str(&id)
        .map_err(|_| ApiError::invalid(format!("`{id}` is not an alarm id")))?;
    let input: AckIn = optional_json(&headers, body).await?;
    st.metrics.write();
    st.controller
        .execute(Request::Engine(Command::AlarmAck {
            alarm,
            by: Actor::console(&s.user),
            note: crate::contract::ids::clean_text("note", &input.note, control::MAX_NOTE, true)
                .map_err(|e| ApiError::invalid(e.to_string()))?,
        }))
        .await?;
    Ok(done())
}

/// `GET /api/doors`: every door with its state and its devices' link.
pub async fn doors(_s: Session, State(st): State<AppState>) -> Result<Response, ApiError> {
    let d = st.engine.doors().await?;
    Ok(Json(serde_json::json!({ "doors": d })).into_response())
}

/// `GET /api/devices`
pub async fn devices(_s: Session, State(st): State<AppState>) -> Result<Response, ApiError> {
    let d = st.engine.devices().await?;
    Ok(Json(serde_json::json!({ "devices": d })).into_response())
}

/// `POST /api/doors/{id}/open`: a remote open, journaled with the user.
pub async fn open_door(
    s: Session,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    st.metrics.write();
    st.controller
        .execute(Request::Engine(Command::DoorOpen {
            door: DoorId::new(id),
            by: Actor::console(&s.user),
        }))
        .await?;
    Ok(done())
}

/// `POST /api/doors/{id}/release-hold`: ends an e-bike hold on an elevator.
pub async fn release_hold(
    s: Session,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    st.metrics.write();
    st.controller
        .execute(Request::Engine(Command::ReleaseHold {
            door: DoorId::new(id),
            by: Actor::console(&s.user),
        }))
        .await?;
    Ok(done())
}

/// `GET /api/persons?q=&after=&limit=` parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonParams {
    pub q: Option<String>,
    pub after: Option<String>,
    pub limit: Option<String>,
}

fn person_matches(p: &Person, q: &str) -> bool {
    p.id.as_str().to_lowercase().contains(q)
        || p.name.to_lowercase().contains(q)
        || p.credentials
            .iter()
            .any(|c| c.value.to_lowercase().contains(q) || c.value.contains(&search::plate_key(q)))
}

/// `GET /api/persons`: the roster by id, filtered by `q` (id, name, credential).
pub async fn persons(
    _a: Admin,
    State(st): State<AppState>,
    q: Result<Query<PersonParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = query(q)?;
    let limit = search::limit_param(&p.limit)?;
    let filter =
        p.q.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase);
    let mut after = p
        .after
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(PersonId::new);
    let mut out = Vec::new();
    let mut more = false;
    // Pages of the engine's roster until enough persons match.
    'pages: loop {
        let batch = st.engine.persons(after.clone(), 1000).await?;
        let full = batch.len() == 1000;
        for person in batch {
            after = Some(person.id.clone());
            if filter.as_deref().is_none_or(|f| person_matches(&person, f)) {
                if out.len() == limit {
                    more = true;
                    break 'pages;
                }
                out.push(person);
            }
        }
        if !full {
            break;
        }
    }
    let next = if more {
        out.last().map(|p| p.id.clone())
    } else {
        None
    };
    Ok(Json(serde_json::json!({ "persons": out, "next_after": next })).into_response())
}

/// `GET /api/persons/{id}`
pub async fn person(
    _a: Admin,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Person>, ApiError> {
    match st.engine.person(PersonId::new(id.as_str())).await? {
        Some(p) => Ok(Json(p)),
        None => Err(ApiError::not_found(format!("no person `{id}`"))),
    }
}

/// `PUT /api/persons/{id}`: the person of `person.upsert` (`id` may be left out).
pub async fn put_person(
    Admin(s): Admin,
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    require_json(&headers)?;
    let body = read_body(&headers, body, st.upload_limit()).await?;
    let mut v: serde_json::Value = parse_json(&body)?;
    let Some(obj) = v.as_object_mut() else {
        return Err(ApiError::invalid("bad JSON: expected a person object"));
    };
    match obj.get("id") {
        None => {
            obj.insert("id".into(), serde_json::Value::String(id.clone()));
        }
        Some(serde_json::Value::String(s)) if *s == id => {}
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "id: must be `{id}`, as in the address"
            )))
        }
    }
    let person: PersonIn = parse_json(&serde_json::to_vec(&v).unwrap_or_default())?;
    let (person, photos) = control::person_from(person, "")?;
    st.metrics.write();
    let out = st
        .controller
        .execute(Request::Upsert {
            person,
            photos,
            by: Actor::console(&s.user),
        })
        .await?;
    Ok(Json(out).into_response())
}

/// `DELETE /api/persons/{id}`
pub async fn delete_person(
    Admin(s): Admin,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.metrics.write();
    st.controller
        .execute(Request::Engine(Command::PersonDelete {
            id: PersonId::new(id),
            by: Actor::console(&s.user),
        }))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/persons/{id}/faces` (a JPEG body): enrolls a face photo.
pub async fn add_face(
    Admin(s): Admin,
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.trim().eq_ignore_ascii_case("image/jpeg") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the photo as Content-Type: image/jpeg",
        ));
    }
    let photo: Bytes = read_body(&headers, body, st.upload_limit()).await?;
    if photo.len() < 4 || photo[..3] != [0xFF, 0xD8, 0xFF] {
        return Err(ApiError::invalid("the photo is not a JPEG file"));
    }
    if st
        .controller
        .faces
        .read()
        .map(|g| g.is_none())
        .unwrap_or(true)
    {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "faces_disabled",
            "face matching is not enabled on this gateway ([faces] in the config), so photos cannot be enrolled",
        ));
    }
    let Some(person) = st.engine.person(PersonId::new(id.as_str())).await? else {
        return Err(ApiError::not_found(format!("no person `{id}`")));
    };
    st.metrics.write();
    let out = st
        .controller
        .execute(Request::Upsert {
            person,
            photos: vec![photo],
            by: Actor::console(&s.user),
        })
        .await?;
    Ok(Json(out).into_response())
}

/// `GET /api/snapshots/{sha256}`: a JPEG kept with a record.
pub async fn snapshot(
    _s: Session,
    State(st): State<AppState>,
    Path(sha): Path<String>,
) -> Result<Response, ApiError> {
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::invalid(
            "a snapshot is named by its sha256 (64 hex digits)",
        ));
    }
    let sha = sha.to_ascii_lowercase();
    match st.journal.snapshot(&sha)? {
        Some(jpeg) => Ok((
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                // Named by content: it never changes; but it is private evidence.
                (header::CACHE_CONTROL, "private, max-age=86400, immutable"),
            ],
            Bytes::copy_from_slice(&jpeg),
        )
            .into_response()),
        None => Err(ApiError::not_found(
            "no such snapshot (never stored, or removed by retention)",
        )),
    }
}
