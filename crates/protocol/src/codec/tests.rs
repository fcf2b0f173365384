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
            Event::new("job-timer-progress-1", json!({"number":3}), Receiver::Job).for_job("j7")
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
        to_worker(r#"{"type":"event","name":"config-changed","data":{"level":"debug"},"id":"b3"}"#),
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
