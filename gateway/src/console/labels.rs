//! The words the console shows for the gateway's codes, in Chinese and
//! English, served as `GET /assets/labels.json` (public, like the page).
//!
//! Alarm types take theirs from the contract's catalogue; every other code
//! has an exhaustive `match` here, so a new variant does not compile until it
//! has both labels. The variants themselves are read from the types' serde
//! names, so the JSON cannot leave one out.

use axum::http::header;
use axum::response::IntoResponse;
use drivers::{CredentialKind, InputKind, Presence, SensorKind};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::contract::{AlarmState, AlarmType, EventAction, EventKind, Group, Reason, Severity};
use crate::engine::{DoorKind, DoorStatus};

/// A label in both languages.
type Zh = &'static str;
type En = &'static str;

fn severity(s: Severity) -> (Zh, En) {
    match s {
        Severity::Critical => ("紧急", "critical"),
        Severity::Major => ("重要", "major"),
        Severity::Minor => ("一般", "minor"),
        Severity::Info => ("提示", "info"),
    }
}

fn state(s: AlarmState) -> (Zh, En) {
    match s {
        AlarmState::Raised => ("新告警", "raised"),
        AlarmState::Acked => ("已确认", "acknowledged"),
        AlarmState::Cleared => ("已恢复", "cleared"),
        AlarmState::Escalated => ("已升级", "escalated"),
    }
}

fn kind(k: EventKind) -> (Zh, En) {
    match k {
        EventKind::Access => ("人员通行", "Access"),
        EventKind::Vehicle => ("车辆", "Vehicle"),
        EventKind::Tag => ("电动车标签", "E-bike tag"),
        EventKind::Face => ("人脸", "Face"),
        EventKind::Input => ("输入/传感器", "Input/sensor"),
        EventKind::Device => ("设备", "Device"),
        EventKind::System => ("系统", "System"),
    }
}

fn reason(r: Reason) -> (Zh, En) {
    match r {
        Reason::Granted => ("通过", "granted"),
        Reason::UnknownCredential => ("未登记凭证", "unknown credential"),
        Reason::Expired => ("已过期", "expired"),
        Reason::NotYetValid => ("未生效", "not yet valid"),
        Reason::OutsideSchedule => ("不在通行时段", "outside schedule"),
        Reason::NotAllowedHere => ("无此门权限", "not allowed here"),
        Reason::Watchlist => ("黑名单", "watchlist"),
        Reason::AntiPassback => ("防潜回", "anti-passback"),
        Reason::StaleRead => ("延迟读卡", "late read"),
        Reason::Uncertain => ("人脸不确定", "face uncertain"),
        Reason::NoUsableFace => ("人脸不清晰", "no usable face"),
    }
}

fn door(s: DoorStatus) -> (Zh, En) {
    match s {
        DoorStatus::Closed => ("关闭", "closed"),
        DoorStatus::Open => ("打开", "open"),
        DoorStatus::Held => ("长时间未关", "held open"),
        DoorStatus::Forced => ("被强行打开", "forced"),
    }
}

fn door_kind(k: DoorKind) -> (Zh, En) {
    match k {
        DoorKind::Door => ("门", "door"),
        DoorKind::Gate => ("大门", "gate"),
        DoorKind::Turnstile => ("闸机", "turnstile"),
        DoorKind::Barrier => ("道闸", "barrier"),
        DoorKind::Elevator => ("电梯", "elevator"),
        DoorKind::Lobby => ("大堂", "lobby"),
    }
}

/// An input's name, then its active and its inactive state.
fn input(k: InputKind) -> ([Zh; 3], [En; 3]) {
    match k {
        InputKind::DoorContact => (["门磁", "门开", "门关"], ["door contact", "open", "closed"]),
        InputKind::ExitRequest => (
            ["出门按钮", "按下", "松开"],
            ["exit button", "pressed", "released"],
        ),
        InputKind::VehicleLoop => (
            ["地感", "有车", "无车"],
            ["vehicle loop", "vehicle", "clear"],
        ),
        InputKind::GateOpen => (["闸门", "打开", "关闭"], ["gate", "open", "closed"]),
    }
}

fn sensor(k: SensorKind) -> (Zh, En) {
    match k {
        SensorKind::Smoke => ("烟雾", "smoke"),
        SensorKind::Gas => ("燃气", "gas"),
        SensorKind::FenceIntrusion => ("周界", "fence"),
        SensorKind::Sos => ("一键求助", "SOS button"),
        SensorKind::EbikeDetected => ("电动车检测", "e-bike detector"),
    }
}

fn presence(p: Presence) -> (Zh, En) {
    match p {
        Presence::Arrived => ("到达", "arrived"),
        Presence::Moved => ("移动", "moved"),
        Presence::Departed => ("离开", "left"),
    }
}

fn group(g: Group) -> (Zh, En) {
    match g {
        Group::Resident => ("住户", "resident"),
        Group::Staff => ("员工", "staff"),
        Group::Visitor => ("访客", "visitor"),
        Group::Watchlist => ("黑名单", "watchlist"),
    }
}

fn credential(k: CredentialKind) -> (Zh, En) {
    match k {
        CredentialKind::Card => ("门卡", "card"),
        CredentialKind::Tag => ("电动车标签", "tag"),
        CredentialKind::Plate => ("车牌", "plate"),
        CredentialKind::Face => ("人脸", "face"),
        CredentialKind::Pin => ("密码", "PIN"),
        CredentialKind::Qr => ("二维码", "QR"),
        CredentialKind::Remote => ("远程", "remote"),
    }
}

/// `decision` has no label of its own: the reason says it.
fn action(a: EventAction) -> (Zh, En) {
    match a {
        EventAction::Decision => ("", ""),
        EventAction::DoorRelease => ("开门", "door released"),
        EventAction::InputChanged => ("输入变化", "input"),
        EventAction::SensorChanged => ("传感器", "sensor"),
        EventAction::TagSeen => ("标签", "tag seen"),
        EventAction::Passage => ("通过人数", "passage"),
        EventAction::Online => ("上线", "online"),
        EventAction::Offline => ("离线", "offline"),
        EventAction::Tamper => ("防拆", "tamper"),
        EventAction::Power => ("电源", "power"),
        EventAction::DeviceError => ("设备错误", "device error"),
        EventAction::PersonUpserted => ("人员更新", "person saved"),
        EventAction::PersonDeleted => ("人员删除", "person deleted"),
        EventAction::GatewayStarted => ("网关启动", "gateway started"),
        EventAction::GatewayStopped => ("网关停止", "gateway stopped"),
        EventAction::GatewayWarning => ("网关告警", "gateway warning"),
        EventAction::ConsoleAction => ("控制台操作", "console"),
    }
}

fn alarm(t: AlarmType) -> (Zh, En) {
    let info = t.info();
    (info.zh, info.en)
}

/// Every variant of a unit enum, in declaration order, read from the names
/// serde knows ("unknown variant `…`, expected one of `a`, `b`").
pub fn variants<T: DeserializeOwned>() -> Vec<T> {
    let Err(e) = serde_json::from_str::<T>("\"\\u0000\"") else {
        return Vec::new();
    };
    let message = e.to_string();
    let Some((_, expected)) = message.split_once("expected") else {
        return Vec::new();
    };
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|name| serde_json::from_value(Value::String(name.to_owned())).ok())
        .collect()
}

/// The serde name of a unit variant.
fn key<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// JSON whose objects keep their keys in declaration order (the page lists
/// event kinds in this order); `serde_json::Map` would sort them.
enum Node {
    Leaf(Value),
    Object(Vec<(String, Node)>),
}

impl Serialize for Node {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Node::Leaf(v) => v.serialize(s),
            Node::Object(entries) => {
                let mut m = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
    }
}

/// One table: key → label, in each language.
fn table<T: DeserializeOwned + Serialize, L: Serialize>(label: fn(T) -> (L, L)) -> [Node; 2] {
    let (mut zh, mut en) = (Vec::new(), Vec::new());
    for v in variants::<T>() {
        let k = key(&v);
        let (z, e) = label(v);
        zh.push((k.clone(), Node::Leaf(json!(z))));
        en.push((k, Node::Leaf(json!(e))));
    }
    [Node::Object(zh), Node::Object(en)]
}

/// The labels as the page reads them: `{"zh": {table: {key: label}}, "en": …}`,
/// as JSON text with the keys in declaration order.
pub fn labels_json() -> String {
    let tables: [(&str, [Node; 2]); 13] = [
        ("alarm", table(alarm)),
        ("severity", table(severity)),
        ("state", table(state)),
        ("kind", table(kind)),
        ("reason", table(reason)),
        ("door", table(door)),
        ("doorkind", table(door_kind)),
        ("input", table(input)),
        ("sensor", table(sensor)),
        ("presence", table(presence)),
        ("group", table(group)),
        ("cred", table(credential)),
        ("action", table(action)),
    ];
    let (mut zh, mut en) = (Vec::new(), Vec::new());
    for (name, [z, e]) in tables {
        zh.push((name.to_owned(), z));
        en.push((name.to_owned(), e));
    }
    // A sensor's two states.
    zh.push(("active".to_owned(), Node::Leaf(json!(["报警", "恢复"]))));
    en.push(("active".to_owned(), Node::Leaf(json!(["alarm", "normal"]))));
    let all = Node::Object(vec![
        ("zh".to_owned(), Node::Object(zh)),
        ("en".to_owned(), Node::Object(en)),
    ]);
    // String keys and plain JSON values: serialising cannot fail.
    serde_json::to_string(&all).unwrap_or_default()
}

/// `GET /assets/labels.json`
pub async fn serve() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        labels_json(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant of `T` has a non-empty label in both languages under `table`.
    fn all_labelled<T: DeserializeOwned + Serialize>(labels: &Value, table: &str) {
        let names: Vec<String> = variants::<T>().iter().map(key).collect();
        assert!(
            names.len() > 1,
            "{table}: variants read from serde: {names:?}"
        );
        for lang in ["zh", "en"] {
            for n in &names {
                let v = &labels[lang][table][n];
                let ok = match v {
                    Value::String(s) => !s.is_empty() || (table == "action" && n == "decision"),
                    Value::Array(a) => a.iter().all(|x| x.as_str().is_some_and(|s| !s.is_empty())),
                    _ => false,
                };
                assert!(ok, "{lang} label missing for {table}.{n}: {v}");
            }
        }
    }

    #[test]
    fn every_code_has_a_zh_and_an_en_label() {
        let l: Value = serde_json::from_str(&labels_json()).unwrap();
        all_labelled::<AlarmType>(&l, "alarm");
        all_labelled::<Severity>(&l, "severity");
        all_labelled::<AlarmState>(&l, "state");
        all_labelled::<EventKind>(&l, "kind");
        all_labelled::<Reason>(&l, "reason");
        all_labelled::<Group>(&l, "group");
        all_labelled::<DoorStatus>(&l, "door");
        all_labelled::<DoorKind>(&l, "doorkind");
        all_labelled::<InputKind>(&l, "input");
        all_labelled::<SensorKind>(&l, "sensor");
        all_labelled::<Presence>(&l, "presence");
        all_labelled::<CredentialKind>(&l, "cred");
        all_labelled::<EventAction>(&l, "action");
    }

    #[test]
    fn variants_are_read_in_order() {
        assert_eq!(
            variants::<Severity>(),
            Severity::ALL.to_vec(),
            "the serde names and ALL agree"
        );
        assert_eq!(variants::<AlarmType>(), AlarmType::ALL.to_vec());
        assert_eq!(variants::<Reason>(), Reason::ALL.to_vec());
        assert_eq!(variants::<EventKind>(), EventKind::ALL.to_vec());
    }
}
