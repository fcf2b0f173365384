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
mod tests {
    use super::*;
    use crate::message::*;
    use serde_json::json;

    fn to_worker(s: &str) -> ToWorker {
        decode_to_worker(s.as_bytes())
            .unwrap()
            .into_message()
            .unwrap()
    }

    #[test]
    fn the_answer_fast_path_agrees_with_the_general_decoder() {
        let frames: &[&str] = &[
            r#"{"type":"result","id":"j1","value":2}"#,
            r#"{"id":"j1","value":{"a":[1,2.5,"é"]},"type":"result"}"#,
            r#"{"type":"result","id":"j1"}"#,
            r#"{"type":"result","id":"j1","value":1,"error":5}"#,
            r#"{"type":"result","id":"j1","extra":{"x":1}}"#,
            r#"{"type":"error","id":"j2","error":{"name":"TypeError","message":"m","stack":"s"}}"#,
            r#"{"type":"error","id":"j2","error":{"name":"E"},"value":3}"#,
            r#"{"type":"error","id":"j2"}"#,
            r#"{"type":"error","id":"j2","error":"nope"}"#,
            r#"{"type":"result","type":"error","id":"j3","value":1}"#,
            r#"{"type":"result","id":7,"value":1}"#,
            r#"{"type":"progress","id":"j4","data":1}"#,
            r#"{"type":"ready","protocol":1}"#,
        ];
        for f in frames {
            if let Some(fast) = decode_answer(f.as_bytes()) {
                let general = decode_from_worker_general(f.as_bytes())
                    .unwrap()
                    .into_message()
                    .unwrap();
                assert_eq!(fast, general, "{f}");
            }
            // The public decoder answers as the general one, error or not.
            let public = format!("{:?}", decode_from_worker(f.as_bytes()));
            let general = format!("{:?}", decode_from_worker_general(f.as_bytes()));
            assert_eq!(public, general, "{f}");
        }
        let long_id = format!(
            r#"{{"type":"result","id":"{}","value":1}}"#,
            "x".repeat(300)
        );
        assert!(decode_from_worker(long_id.as_bytes()).is_err());
        assert!(decode_answer(br#"{"type":"result","id":"j1","value":2}"#).is_some());
    }

    #[test]
    fn the_run_fast_path_agrees_with_the_general_decoder() {
        let frames: &[&str] = &[
            r#"{"type":"run","id":"j1","job":"inc","params":{"x":1}}"#,
            r#"{"type":"run","id":"j1","job":"inc","path":"/j/inc.js","params":[1,"é\n"],"deadline":1700000000123}"#,
            r#"{"type":"run","id":"j1","job":"inc"}"#,
            r#"{"type":"run","id":"j1","job":"inc","params":null,"path":null,"deadline":null}"#,
            r#"{"type":"run","id":"j1","job":"inc","args":[1,2],"extra":{"x":1}}"#,
            r#"{"type":"run","id":"j1","job":"inc","fds":2,"streams":{"input":0,"output":1,"stall_ms":1000}}"#,
            r#"{"type":"run","id":"j1","job":"inc","fds":-1}"#,
            r#"{"type":"run","id":"j1","job":"inc","deadline":1.5}"#,
            r#"{"type":"run","id":"j1","job":"inc","params":1,"params":2}"#,
            r#"{"type":"run","type":"cancel","id":"j1","job":"inc"}"#,
            r#"{"type":"run","id":7,"job":"inc"}"#,
            r#"{"type":"run","id":"","job":"inc"}"#,
            r#"{"type":"run","job":"inc"}"#,
            r#"{"type":"run","id":"j1","job":"inc","params":{"x":1}"#,
            r#"{"type":"run","id":"j1","job":"inc"} trailing"#,
            r#"{"id":"j1","job":"inc","type":"run"}"#,
            r#"{"type":"cancel","id":"j1"}"#,
        ];
        let mut fast_taken = 0;
        for f in frames {
            if let Some(fast) = decode_run(f.as_bytes()) {
                fast_taken += 1;
                let general = decode_to_worker_general(f.as_bytes());
                match validate_to_worker(&fast) {
                    Ok(()) => assert_eq!(general.unwrap().into_message().unwrap(), fast, "{f}"),
                    Err(e) => assert_eq!(general.unwrap_err().to_string(), e.to_string(), "{f}"),
                }
            }
            // The public decoder answers as the general one, error or not.
            let public = format!("{:?}", decode_to_worker(f.as_bytes()));
            let general = format!("{:?}", decode_to_worker_general(f.as_bytes()));
            assert_eq!(public, general, "{f}");
        }
        assert_eq!(fast_taken, 7, "the well-formed runs take the fast path");
        let long_id = format!(r#"{{"type":"run","id":"{}","job":"inc"}}"#, "x".repeat(300));
        assert!(decode_run(long_id.as_bytes()).is_some());
        assert!(decode_to_worker(long_id.as_bytes()).is_err());
    }

    #[test]
    fn encode_into_appends_the_same_frame_as_encode_and_leaves_the_buffer_on_error() {
        let ok = FromWorker::Result(ResultMsg::new("j1", json!({"v": [1, 2]})));
        let mut out = b"{}\n".to_vec();
        encode_into(&ok, 1024, &mut out).unwrap();
        let mut want = b"{}\n".to_vec();
        want.extend_from_slice(&encode(&ok, 1024).unwrap());
        assert_eq!(out, want);
        let big = FromWorker::Result(ResultMsg::new("j2", json!("x".repeat(100))));
        let err = encode_into(&big, 50, &mut out).unwrap_err();
        assert!(matches!(err, EncodeError::FrameTooLarge { max: 50, .. }));
        assert_eq!(out, want);
    }

    fn from_worker(s: &str) -> FromWorker {
        decode_from_worker(s.as_bytes())
            .unwrap()
            .into_message()
            .unwrap()
    }

    #[test]
    fn every_documented_example_decodes() {
        // The examples of docs/protocol.md §4, verbatim.
        assert!(matches!(
            from_worker(
                r#"{"type":"ready","protocol":1,"pid":4242,"runtime":"node/20.20.2","capabilities":["cancel","call","progress","events"],"concurrency":1}"#
            ),
            FromWorker::Ready(Ready {
                protocol: Some(1),
                pid: Some(4242),
                concurrency: Some(1),
                minor: None,
                ..
            })
        ));
        assert_eq!(from_worker(r#"{"type":"busy"}"#), FromWorker::Busy);
        assert_eq!(
            from_worker(r#"{"type":"progress","id":"j7","data":{"done":40,"total":100}}"#),
            FromWorker::Progress(Progress::new("j7", json!({"done":40,"total":100})))
        );
        assert_eq!(
            from_worker(
                r#"{"type":"event","name":"job-timer-progress-1","data":{"number":3},"receiver":"job","id":"j7"}"#
            ),
            FromWorker::Event(
                Event::new("job-timer-progress-1", json!({"number":3}), Receiver::Job)
                    .for_job("j7")
            )
        );
        assert!(matches!(
            from_worker(r#"{"type":"result","id":"j7","value":{"width":640,"height":480}}"#),
            FromWorker::Result(_)
        ));
        let FromWorker::Error(e) = from_worker(
            r#"{"type":"error","id":"j7","error":{"name":"TypeError","message":"x is not a function","stack":"TypeError: x"}}"#,
        ) else {
            panic!()
        };
        assert_eq!(e.error.name, "TypeError");
        assert_eq!(
            from_worker(r#"{"type":"ack","id":"b3"}"#),
            FromWorker::Ack(Ack::new("b3"))
        );
        assert_eq!(
            from_worker(r#"{"type":"pong","id":"p1"}"#),
            FromWorker::Pong(Pong::new("p1"))
        );
        assert_eq!(
            from_worker(r#"{"type":"pong","id":"p2","heap_used":10,"heap_total":20}"#),
            FromWorker::Pong(Pong::new("p2").with_heap(10, 20))
        );

        let ToWorker::Run(run) = to_worker(
            r#"{"type":"run","id":"j7","job":"images/resize","path":"/srv/jobs/images/resize.js","params":{"width":640},"deadline":1795000000000}"#,
        ) else {
            panic!()
        };
        assert_eq!(run.deadline, Some(1_795_000_000_000));
        assert!(matches!(
            to_worker(r#"{"type":"call","id":"j8","job":"timer","path":"/srv/jobs/timer.js","func":"pause","args":[1,"a"]}"#),
            ToWorker::Call(Call { ref func, .. }) if func == "pause"
        ));
        assert_eq!(
            to_worker(r#"{"type":"cancel","id":"j7"}"#),
            ToWorker::Cancel(Cancel::new("j7"))
        );
        assert!(matches!(
            to_worker(
                r#"{"type":"event","name":"config-changed","data":{"level":"debug"},"id":"b3"}"#
            ),
            ToWorker::Event(Broadcast { id: Some(_), .. })
        ));
        assert_eq!(
            to_worker(r#"{"type":"ping","id":"p1"}"#),
            ToWorker::Ping(Ping::new("p1"))
        );
        assert_eq!(
            to_worker(r#"{"type":"shutdown","grace_ms":5000}"#),
            ToWorker::Shutdown(Shutdown::new(5000))
        );
        assert_eq!(
            to_worker(r#"{"type":"kill","grace_ms":250}"#),
            ToWorker::Kill(Kill::new(250))
        );
    }

    #[test]
    fn legacy_run_and_call_map_to_native() {
        let ToWorker::Run(run) = to_worker(
            r#"{"mid":"k3j9","cmd":"run","jobPath":"/srv/jobs/timer.js","jobParams":[{"jobId":"t1"}]}"#,
        ) else {
            panic!()
        };
        assert_eq!(run.id, "k3j9");
        assert_eq!(run.job, "timer");
        assert_eq!(run.path.as_deref(), Some("/srv/jobs/timer.js"));
        assert_eq!(run.params, json!({"jobId":"t1"}));
        assert_eq!(run.args, Some(vec![json!({"jobId":"t1"})]));

        let ToWorker::Call(call) = to_worker(
            r#"{"mid":"k3ja","cmd":"run","jobPath":"./jobs/timer","jobFunc":"pause","jobFuncParams":[1]}"#,
        ) else {
            panic!()
        };
        assert_eq!((call.id.as_str(), call.func.as_str()), ("k3ja", "pause"));
        assert_eq!(call.job, "jobs/timer");
        assert_eq!(call.args, vec![json!(1)]);
    }

    #[test]
    fn legacy_events_map_receivers() {
        for (wire, want) in [
            ("job", Receiver::Job),
            ("childJob", Receiver::Job),
            ("task", Receiver::Task),
            ("forkProcess", Receiver::Task),
            ("all", Receiver::All),
            ("whatever", Receiver::All),
        ] {
            let line = format!(
                r#"{{"channel":"ee#sendToMain","eventReceiver":"{wire}","event":"e","data":[1]}}"#
            );
            assert_eq!(
                from_worker(&line),
                FromWorker::Event(Event::new("e", json!([1]), want))
            );
        }
        assert!(matches!(
            from_worker(r#"{"channel":"ee#showException","data":"Error: boom"}"#),
            FromWorker::Event(Event { ref name, .. }) if name == "ee#showException"
        ));
    }

    #[test]
    fn unknown_types_and_node_commands_are_ignored() {
        assert!(matches!(
            decode_from_worker(br#"{"type":"telemetry","x":1}"#).unwrap(),
            Decoded::Ignored { .. }
        ));
        assert!(matches!(
            decode_to_worker(br#"{"cmd":"NODE_HANDLE_ACK"}"#).unwrap(),
            Decoded::Ignored { .. }
        ));
        assert!(matches!(
            decode_from_worker(br#"{"cmd":"NODE_HANDLE","msg":{}}"#).unwrap(),
            Decoded::Ignored { .. }
        ));
    }

    #[test]
    fn malformed_frames_are_typed_errors() {
        type Check = fn(&DecodeError) -> bool;
        let cases: &[(&[u8], Check)] = &[
            (b"{not json", |e| matches!(e, DecodeError::InvalidJson(_))),
            (b"[1,2]", |e| matches!(e, DecodeError::NotAnObject)),
            (b"{\"x\":1}", |e| matches!(e, DecodeError::MissingType)),
            (b"{\"type\":7}", |e| matches!(e, DecodeError::MissingType)),
            (b"{\"type\":\"result\"}", |e| {
                matches!(e, DecodeError::InvalidMessage { .. })
            }),
            (b"{\"type\":\"result\",\"id\":\"\"}", |e| {
                matches!(e, DecodeError::InvalidId { .. })
            }),
            (b"\xff\xfe", |e| matches!(e, DecodeError::InvalidUtf8)),
        ];
        for (line, ok) in cases {
            let err = decode_from_worker(line).unwrap_err();
            assert!(ok(&err), "{:?} gave {err:?}", String::from_utf8_lossy(line));
        }
        let long_id = format!(
            r#"{{"type":"cancel","id":"{}"}}"#,
            "x".repeat(MAX_ID_LEN + 1)
        );
        assert!(matches!(
            decode_to_worker(long_id.as_bytes()),
            Err(DecodeError::InvalidId { .. })
        ));
    }

    #[test]
    fn encode_is_compact_one_line_and_bounded() {
        let msg = FromWorker::Result(ResultMsg::new("j1", json!({"text": "a\nb"})));
        let frame = encode(&msg, 1024).unwrap();
        assert_eq!(
            frame,
            b"{\"type\":\"result\",\"id\":\"j1\",\"value\":{\"text\":\"a\\nb\"}}\n"
        );
        assert!(matches!(
            encode(&msg, 10),
            Err(EncodeError::FrameTooLarge { max: 10, .. })
        ));
        assert_eq!(
            encode(&FromWorker::Busy, 64).unwrap(),
            b"{\"type\":\"busy\"}\n"
        );
    }
}
