//! Encoding and decoding of single frames (`docs/protocol.md` §2, §5, §6).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{DecodeError, EncodeError};
use crate::message::{Call, Event, FromWorker, Receiver, Run, ToWorker};
use crate::MAX_ID_LEN;

/// What a well-formed frame turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded<T> {
    /// A message of this protocol (legacy shapes already mapped).
    Message(T),
    /// A frame to ignore: an unknown `type`, or a Node-internal `NODE_` command.
    Ignored {
        /// Why, for a debug log.
        reason: String,
    },
}

impl<T> Decoded<T> {
    /// The message, or `None` when the frame is to be ignored.
    pub fn into_message(self) -> Option<T> {
        match self {
            Self::Message(m) => Some(m),
            Self::Ignored { .. } => None,
        }
    }
}

/// Encodes `msg` as one frame: compact JSON and a trailing `\n`.
///
/// # Errors
///
/// [`EncodeError::FrameTooLarge`] when the JSON is longer than `max_frame` bytes.
pub fn encode<T: Serialize>(msg: &T, max_frame: usize) -> Result<Vec<u8>, EncodeError> {
    let mut out = serde_json::to_vec(msg).map_err(EncodeError::Serialize)?;
    if out.len() > max_frame {
        return Err(EncodeError::FrameTooLarge {
            size: out.len(),
            max: max_frame,
        });
    }
    out.push(b'\n');
    Ok(out)
}

/// Appends `msg` to `out` as one frame (compact JSON and a trailing `\n`) without allocating
/// a buffer of its own: a writer can gather many frames in one reused buffer.
///
/// # Errors
///
/// [`EncodeError::FrameTooLarge`] when the JSON is longer than `max_frame` bytes, and
/// [`EncodeError::Serialize`]; in both cases `out` is left as it was.
pub fn encode_into<T: Serialize>(
    msg: &T,
    max_frame: usize,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let start = out.len();
    if let Err(e) = serde_json::to_writer(&mut *out, msg) {
        out.truncate(start);
        return Err(EncodeError::Serialize(e));
    }
    let size = out.len() - start;
    if size > max_frame {
        out.truncate(start);
        return Err(EncodeError::FrameTooLarge {
            size,
            max: max_frame,
        });
    }
    out.push(b'\n');
    Ok(())
}

const TO_WORKER_TYPES: &[&str] = &["run", "call", "cancel", "event", "ping", "shutdown", "kill"];
const FROM_WORKER_TYPES: &[&str] = &[
    "ready", "busy", "progress", "event", "result", "error", "ack", "pong",
];

/// Decodes one frame (without its newline) sent by a supervisor.
///
/// ee-core's `{mid, cmd: "run", jobPath, jobParams, jobFunc, jobFuncParams}` is mapped to
/// [`ToWorker::Run`] or [`ToWorker::Call`].
///
/// # Errors
///
/// A [`DecodeError`] for anything that is not a well-formed message; an unknown `type` is not
/// an error but [`Decoded::Ignored`].
pub fn decode_to_worker(line: &[u8]) -> Result<Decoded<ToWorker>, DecodeError> {
    if let Some(msg) = decode_run(line) {
        validate_to_worker(&msg)?;
        return Ok(Decoded::Message(msg));
    }
    decode_to_worker_general(line)
}

/// Every frame from a supervisor, through a JSON object first (the hot `run` frame skips it:
/// `decode_run`).
fn decode_to_worker_general(line: &[u8]) -> Result<Decoded<ToWorker>, DecodeError> {
    let map = parse_object(line)?;
    if let Some(kind) = map.get("type") {
        let kind = type_name(kind)?;
        if !TO_WORKER_TYPES.contains(&kind.as_str()) {
            return Ok(ignored(format!("unknown message type {kind:?}")));
        }
        let msg: ToWorker = from_map(map, &kind)?;
        validate_to_worker(&msg)?;
        return Ok(Decoded::Message(msg));
    }
    if let Some(cmd) = map.get("cmd") {
        let cmd = type_name(cmd)?;
        if cmd.starts_with("NODE_") {
            return Ok(ignored(format!("node-internal command {cmd:?}")));
        }
        if cmd != "run" {
            return Ok(ignored(format!("unknown legacy command {cmd:?}")));
        }
        let msg = legacy_run(map)?;
        validate_to_worker(&msg)?;
        return Ok(Decoded::Message(msg));
    }
    if map.contains_key("channel") {
        return Ok(ignored("legacy channel message sent to a worker".into()));
    }
    Err(DecodeError::MissingType)
}

/// Decodes one frame (without its newline) sent by a worker.
///
/// ee-core's `{channel: "ee#sendToMain", eventReceiver, event, data}` is mapped to
/// [`FromWorker::Event`]; `{channel: "ee#showException", data}` to an event named
/// `ee#showException`.
///
/// # Errors
///
/// A [`DecodeError`] for anything that is not a well-formed message; an unknown `type` is not
/// an error but [`Decoded::Ignored`].
pub fn decode_from_worker(line: &[u8]) -> Result<Decoded<FromWorker>, DecodeError> {
    if let Some(msg) = decode_answer(line) {
        validate_from_worker(&msg)?;
        return Ok(Decoded::Message(msg));
    }
    decode_from_worker_general(line)
}

/// Every frame from a worker, through a JSON object first (the hot `result` and `error`
/// frames skip it: `decode_answer`).
fn decode_from_worker_general(line: &[u8]) -> Result<Decoded<FromWorker>, DecodeError> {
    let map = parse_object(line)?;
    if let Some(kind) = map.get("type") {
        let kind = type_name(kind)?;
        if !FROM_WORKER_TYPES.contains(&kind.as_str()) {
            return Ok(ignored(format!("unknown message type {kind:?}")));
        }
        let msg: FromWorker = from_map(map, &kind)?;
        validate_from_worker(&msg)?;
        return Ok(Decoded::Message(msg));
    }
    if let Some(channel) = map.get("channel") {
        let channel = type_name(channel)?;
        return Ok(match channel.as_str() {
            "ee#sendToMain" => Decoded::Message(FromWorker::Event(legacy_event(map)?)),
            "ee#showException" => {
                let data = map.get("data").cloned().unwrap_or(Value::Null);
                Decoded::Message(FromWorker::Event(Event::new(
                    "ee#showException",
                    data,
                    Receiver::All,
                )))
            }
            other => ignored(format!("unknown legacy channel {other:?}")),
        });
    }
    if let Some(cmd) = map.get("cmd") {
        let cmd = type_name(cmd)?;
        return Ok(ignored(format!("command {cmd:?} from a worker")));
    }
    Err(DecodeError::MissingType)
}

/// The fields of a `result` or `error` frame, read in one pass (no intermediate map).
#[derive(serde::Deserialize)]
struct AnswerFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    id: String,
    #[serde(default)]
    value: Value,
    #[serde(default)]
    error: Option<crate::message::ErrorInfo>,
}

/// The hot path: a well-formed `result` or `error` frame, parsed straight into its message.
/// `None` for anything else (another type, a duplicate key, a field of the wrong type, bad
/// JSON): the general path then decides, with its own errors, so both agree on every frame.
fn decode_answer(line: &[u8]) -> Option<FromWorker> {
    let f: AnswerFrame<'_> = serde_json::from_slice(line).ok()?;
    match (&*f.kind, f.error) {
        ("result", _) => Some(FromWorker::Result(crate::message::ResultMsg::new(
            f.id, f.value,
        ))),
        ("error", Some(error)) => Some(FromWorker::Error(crate::message::WorkerError::new(
            f.id, error,
        ))),
        _ => None,
    }
}

/// The fields of a `run` frame, read in one pass (no intermediate map); as [`Run`]'s.
#[derive(serde::Deserialize)]
struct RunFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    id: String,
    job: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    params: Value,
    #[serde(default)]
    args: Option<Vec<Value>>,
    #[serde(default)]
    deadline: Option<u64>,
    #[serde(default)]
    fds: Option<u32>,
    #[serde(default)]
    streams: Option<crate::StreamSpec>,
}

/// The worker's hot path: a well-formed `run` frame whose `type` comes first (as every
/// supervisor of this crate writes it), parsed straight into its message. `None` for anything
/// else (another type or order, a duplicate key, a field of the wrong type, bad JSON): the
/// general path then decides, with its own errors, so both agree on every frame.
fn decode_run(line: &[u8]) -> Option<ToWorker> {
    if !line.starts_with(br#"{"type":"run","#) {
        return None;
    }
    let f: RunFrame<'_> = serde_json::from_slice(line).ok()?;
    if f.kind != "run" {
        return None;
    }
    Some(ToWorker::Run(crate::message::Run {
        id: f.id,
        job: f.job,
        path: f.path,
        params: f.params,
        args: f.args,
        deadline: f.deadline,
        fds: f.fds,
        streams: f.streams,
    }))
}

fn ignored<T>(reason: String) -> Decoded<T> {
    Decoded::Ignored { reason }
}

fn parse_object(line: &[u8]) -> Result<Map<String, Value>, DecodeError> {
    let text = std::str::from_utf8(line).map_err(|_| DecodeError::InvalidUtf8)?;
    match serde_json::from_str::<Value>(text).map_err(DecodeError::InvalidJson)? {
        Value::Object(map) => Ok(map),
        _ => Err(DecodeError::NotAnObject),
    }
}

fn type_name(v: &Value) -> Result<String, DecodeError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(DecodeError::MissingType),
    }
}

fn from_map<T: serde::de::DeserializeOwned>(
    map: Map<String, Value>,
    kind: &str,
) -> Result<T, DecodeError> {
    serde_json::from_value(Value::Object(map)).map_err(|source| DecodeError::InvalidMessage {
        kind: kind.to_owned(),
        source,
    })
}

fn invalid(kind: &str, what: &str) -> DecodeError {
    DecodeError::InvalidMessage {
        kind: kind.to_owned(),
        source: serde::de::Error::custom(what),
    }
}

/// ee-core `{mid, cmd: "run", jobPath, jobParams, jobFunc, jobFuncParams}`.
fn legacy_run(mut map: Map<String, Value>) -> Result<ToWorker, DecodeError> {
    let mut take_str = |key: &str| match map.remove(key) {
        Some(Value::String(s)) => Ok(Some(s)),
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(invalid("run", &format!("{key} must be a string"))),
    };
    let id = take_str("mid")?.ok_or_else(|| invalid("run", "missing mid"))?;
    let path = take_str("jobPath")?.unwrap_or_default();
    let func = take_str("jobFunc")?;
    let job = job_name_of(&path);
    let path = (!path.is_empty()).then_some(path);
    let take_array = |v: Option<Value>, key: &str| match v {
        Some(Value::Array(a)) => Ok(a),
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(_) => Err(invalid("run", &format!("{key} must be an array"))),
    };
    if let Some(func) = func.filter(|f| !f.is_empty()) {
        let args = take_array(map.remove("jobFuncParams"), "jobFuncParams")?;
        return Ok(ToWorker::Call(Call {
            id,
            job,
            path,
            func,
            args,
        }));
    }
    let args = take_array(map.remove("jobParams"), "jobParams")?;
    Ok(ToWorker::Run(Run {
        id,
        job,
        path,
        params: args.first().cloned().unwrap_or(Value::Null),
        args: Some(args),
        deadline: None,
        fds: None,
        streams: None,
    }))
}

/// The job name of an ee-core `jobPath`: its file stem for absolute paths, else the path
/// without a `./` prefix or a `.js`-family extension.
fn job_name_of(path: &str) -> String {
    let trimmed = path.strip_prefix("./").unwrap_or(path);
    let name = if trimmed.starts_with('/') {
        trimmed.rsplit('/').next().unwrap_or(trimmed)
    } else {
        trimmed
    };
    for ext in [".js", ".mjs", ".cjs", ".py"] {
        if let Some(stem) = name.strip_suffix(ext) {
            return stem.to_owned();
        }
    }
    name.to_owned()
}

/// ee-core `{channel: "ee#sendToMain", eventReceiver, event, data}`.
fn legacy_event(mut map: Map<String, Value>) -> Result<Event, DecodeError> {
    let name = match map.remove("event") {
        Some(Value::String(s)) => s,
        _ => return Err(invalid("event", "ee#sendToMain without a string \"event\"")),
    };
    let receiver = match map.remove("eventReceiver") {
        Some(Value::String(s)) => Receiver::from_wire(&s),
        _ => Receiver::All,
    };
    let data = map.remove("data").unwrap_or(Value::Null);
    Ok(Event::new(name, data, receiver))
}

pub(crate) fn check_id(id: &str) -> Result<(), DecodeError> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(DecodeError::InvalidId {
            len: id.len(),
            max: MAX_ID_LEN,
        });
    }
    Ok(())
}

fn validate_to_worker(msg: &ToWorker) -> Result<(), DecodeError> {
    match msg {
        ToWorker::Run(r) => check_id(&r.id),
        ToWorker::Call(c) => check_id(&c.id),
        ToWorker::Cancel(c) => check_id(&c.id),
        ToWorker::Ping(p) => check_id(&p.id),
        ToWorker::Event(b) => b.id.as_deref().map_or(Ok(()), check_id),
        ToWorker::Shutdown(_) | ToWorker::Kill(_) => Ok(()),
    }
}

fn validate_from_worker(msg: &FromWorker) -> Result<(), DecodeError> {
    match msg {
        FromWorker::Progress(p) => check_id(&p.id),
        FromWorker::Result(r) => check_id(&r.id),
        FromWorker::Error(e) => check_id(&e.id),
        FromWorker::Ack(a) => check_id(&a.id),
        FromWorker::Pong(p) => check_id(&p.id),
        FromWorker::Event(e) => e.id.as_deref().map_or(Ok(()), check_id),
        FromWorker::Ready(_) | FromWorker::Busy => Ok(()),
    }
}

#[cfg(test)]
mod tests;
