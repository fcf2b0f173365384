//! Property tests of the codec: round trips, no panics on any input, bounded framing.

use offload_protocol::{
    decode_from_worker, decode_to_worker, encode, Ack, Broadcast, Call, Cancel, Decoded, ErrorInfo,
    Event, FromWorker, LineFramer, Ping, Pong, Progress, Ready, Receiver, ResultMsg, Run, Shutdown,
    ToWorker, WorkerError,
};
use proptest::prelude::*;
use serde_json::Value;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn id() -> impl Strategy<Value = String> {
    ".{1,40}"
}

fn to_worker() -> impl Strategy<Value = ToWorker> {
    prop_oneof![
        (
            id(),
            ".{0,30}",
            json_value(),
            proptest::option::of(any::<u64>())
        )
            .prop_map(|(id, job, params, deadline)| {
                let run = Run::new(id, job, params);
                ToWorker::Run(match deadline {
                    Some(d) => run.with_deadline(d),
                    None => run,
                })
            }),
        (
            id(),
            ".{0,30}",
            ".{0,10}",
            prop::collection::vec(json_value(), 0..4)
        )
            .prop_map(|(id, job, func, args)| ToWorker::Call(Call::new(id, job, func, args))),
        id().prop_map(|id| ToWorker::Cancel(Cancel::new(id))),
        (".{0,10}", json_value(), proptest::option::of(id()))
            .prop_map(|(n, d, id)| ToWorker::Event(Broadcast::new(n, d, id))),
        id().prop_map(|id| ToWorker::Ping(Ping::new(id))),
        any::<u64>().prop_map(|g| ToWorker::Shutdown(Shutdown::new(g))),
    ]
}

fn receiver() -> impl Strategy<Value = Receiver> {
    prop_oneof![
        Just(Receiver::Job),
        Just(Receiver::Task),
        Just(Receiver::All)
    ]
}

fn from_worker() -> impl Strategy<Value = FromWorker> {
    prop_oneof![
        (
            any::<u32>(),
            any::<u32>(),
            ".{0,12}",
            prop::collection::vec("[a-z]{1,8}", 0..4),
            any::<u32>()
        )
            .prop_map(|(p, pid, rt, caps, c)| FromWorker::Ready(Ready::handshake(
                p, pid, rt, caps, c
            ))),
        Just(FromWorker::Busy),
        (id(), json_value()).prop_map(|(id, d)| FromWorker::Progress(Progress::new(id, d))),
        (
            ".{0,10}",
            json_value(),
            receiver(),
            proptest::option::of(id())
        )
            .prop_map(|(n, d, r, id)| {
                let e = Event::new(n, d, r);
                FromWorker::Event(match id {
                    Some(id) => e.for_job(id),
                    None => e,
                })
            }),
        (id(), json_value()).prop_map(|(id, v)| FromWorker::Result(ResultMsg::new(id, v))),
        (id(), ".{0,10}", ".{0,30}", proptest::option::of(".{0,60}")).prop_map(|(id, n, m, s)| {
            let e = ErrorInfo::new(n, m);
            FromWorker::Error(WorkerError::new(
                id,
                match s {
                    Some(s) => e.with_stack(s),
                    None => e,
                },
            ))
        }),
        id().prop_map(|id| FromWorker::Ack(Ack::new(id))),
        id().prop_map(|id| FromWorker::Pong(Pong::new(id))),
    ]
}

/// 512 cases per property, or `PROPTEST_CASES` when set (a long campaign: `bench/fuzz`).
fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 512;
    }
    // An integration test has no lib.rs beside it: name the regressions file explicitly
    // (tests/props.proptest-regressions, committed and replayed by every run).
    c.failure_persistence = Some(Box::new(
        proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
    ));
    c
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn to_worker_round_trips(msg in to_worker()) {
        let frame = encode(&msg, usize::MAX).unwrap();
        prop_assert_eq!(frame.iter().filter(|&&b| b == b'\n').count(), 1);
        let back = decode_to_worker(&frame[..frame.len() - 1]).unwrap();
        prop_assert_eq!(back, Decoded::Message(msg));
    }

    #[test]
    fn from_worker_round_trips(msg in from_worker()) {
        let frame = encode(&msg, usize::MAX).unwrap();
        prop_assert_eq!(frame.iter().filter(|&&b| b == b'\n').count(), 1);
        let back = decode_from_worker(&frame[..frame.len() - 1]).unwrap();
        prop_assert_eq!(back, Decoded::Message(msg));
    }

    #[test]
    fn any_bytes_decode_or_fail_typed(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_to_worker(&bytes);
        let _ = decode_from_worker(&bytes);
    }

    #[test]
    fn any_json_object_decodes_or_fails_typed(v in json_value(), kind in prop_oneof![
        Just("run"), Just("call"), Just("result"), Just("error"), Just("ready"), Just("event"),
        Just("progress"), Just("cancel"), Just("shutdown"), Just("nope")
    ]) {
        let mut map = match v { Value::Object(m) => m, other => {
            let mut m = serde_json::Map::new();
            m.insert("x".into(), other);
            m
        }};
        map.insert("type".into(), Value::String(kind.into()));
        let line = serde_json::to_vec(&Value::Object(map)).unwrap();
        let _ = decode_to_worker(&line);
        let _ = decode_from_worker(&line);
    }

    #[test]
    fn framing_reassembles_any_chunking(
        msgs in prop::collection::vec(from_worker(), 1..8),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let stream: Vec<u8> = msgs.iter().flat_map(|m| encode(m, usize::MAX).unwrap()).collect();
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut framer = LineFramer::new(1 << 20);
        let mut got = Vec::new();
        for w in points.windows(2) {
            framer.push(&stream[w[0]..w[1]], |f| {
                got.push(decode_from_worker(f.unwrap()).unwrap().into_message().unwrap());
            });
        }
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn framer_memory_is_bounded(max in 1usize..512, chunks in prop::collection::vec(
        prop::collection::vec(prop_oneof![9 => Just(b'x'), 1 => Just(b'\n')], 0..300), 0..30)
    ) {
        let mut framer = LineFramer::new(max);
        for c in &chunks {
            framer.push(c, |f| if let Ok(line) = f { assert!(line.len() <= max) });
            prop_assert!(framer.pending() <= max);
        }
    }
}
