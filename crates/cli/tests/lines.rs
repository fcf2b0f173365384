//! The seed's TCP/UDP line protocol end to end (docs/line-protocol.md): a real `offload serve
//! --tcp --udp`, real sockets, real workers, the job files of `fixtures/lines/`.

mod common;
#[path = "common/lines.rs"]
mod lines;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use lines::{
    gap_call, half_close_call, is_error, line_call, php_call, read_all, udp_send, LineDaemon,
};
use serde_json::Value;

/// The tests' offload.toml: `slow` gets a pool of one worker.
const BASE: &str = r#"
[[pool]]
name = "slow"
jobs = ["slow"]
kind = "node"
max = 1
"#;

fn id_of(answer: &str) -> String {
    answer
        .strip_prefix("id:")
        .unwrap_or_else(|| panic!("not an id: {answer:?}"))
        .to_owned()
}

/// Polls `f` until it returns `Some`, for up to 20 s.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The one job named `job` that the HTTP API lists, once it is over: (record, result answer).
fn finished_job(d: &LineDaemon, job: &str) -> (Value, Value) {
    let rec = eventually(&format!("a {job} job"), || {
        let page = d.http_get(&format!("/v1/jobs?job={job}&include=params"));
        page["jobs"].as_array().unwrap().first().cloned()
    });
    let id = rec["id"].as_str().unwrap();
    let result = d.http_get(&format!("/v1/jobs/{id}/result?wait=20"));
    (rec, result)
}

#[test]
fn a_client_like_the_seeds_php_example_gets_its_answer() {
    let d = LineDaemon::start(BASE);
    // One write, no newline, no half-close, one fgets($fp, 1024).
    assert_eq!(php_call(d.tcp, b"echo:hello world"), "hello world");
    // The data keeps its colons and newlines (the PHP example sends a whole stylesheet).
    let css = "@c: red;\na { color: @c; }\nb:hover {\n  x: y;\n}";
    assert_eq!(gap_call(d.tcp, &format!("echo:{css}")), css);
    // A JSON result is written serialized; this is what a job receives.
    let answer = gap_call(d.tcp, "params:a:b\nc");
    let v: Value = serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"));
    assert_eq!(v["module"], "params");
    assert_eq!(v["data"], "a:b\nc");
    assert_eq!(v["parts"], serde_json::json!(["params", "a:b\nc"]));
    assert_eq!(v["transport"], "tcp");
    assert!(v["peer"].as_str().unwrap().starts_with("127.0.0.1:"), "{v}");
    // A Python job receives the same params.
    assert_eq!(php_call(d.tcp, b"pyrev:abc"), "cba");
    // Each call is a durable job like any other.
    let page = d.http_get("/v1/jobs?job=echo&state=succeeded");
    assert_eq!(page["jobs"].as_array().unwrap().len(), 2, "{page}");
}

#[test]
fn a_request_ends_at_half_close_at_a_newline_or_after_a_quiet_gap() {
    // A long gap so that each ending is told apart by time.
    let d = LineDaemon::start(&format!("[lines]\nend_gap_ms = 1500\n{BASE}"));
    let gap = Duration::from_millis(1500);
    assert_eq!(half_close_call(d.tcp, b"echo:warm"), "warm");
    let t = Instant::now();
    assert_eq!(half_close_call(d.tcp, b"echo:a\nb:c\n\nd"), "a\nb:c\n\nd");
    assert!(t.elapsed() < gap, "half-close took {:?}", t.elapsed());
    let t = Instant::now();
    assert_eq!(line_call(d.tcp, "echo:line one"), "line one");
    assert!(t.elapsed() < gap, "newline took {:?}", t.elapsed());
    // Newlines inside one write do not end the request; the final one does.
    let t = Instant::now();
    assert_eq!(line_call(d.tcp, "echo:x\ny"), "x\ny");
    assert!(t.elapsed() < gap, "newline took {:?}", t.elapsed());
    let t = Instant::now();
    assert_eq!(gap_call(d.tcp, "echo:quiet"), "quiet");
    assert!(
        t.elapsed() >= gap,
        "the gap ended it after {:?}",
        t.elapsed()
    );
}

#[test]
fn queue_add_check_get_round_trip() {
    let d = LineDaemon::start(BASE);
    let a = id_of(&line_call(d.tcp, "queue:add:slow:1500"));
    eventually("the first job to start", || {
        (line_call(d.tcp, &format!("queue:check:id:{a}")) == "1").then_some(())
    });
    // The pool has one worker: the second job waits.
    let b = id_of(&php_call(d.tcp, b"queue:add:slow:10"));
    assert_eq!(line_call(d.tcp, &format!("queue:check:id:{b}")), "0");
    assert_eq!(line_call(d.tcp, &format!("queue:get:id:{b}")), "slept 10");
    assert_eq!(line_call(d.tcp, &format!("queue:check:id:{b}")), "2");
    assert_eq!(line_call(d.tcp, &format!("queue:check:id:{a}")), "2");
    assert_eq!(
        php_call(d.tcp, format!("queue:get:id:{a}").as_bytes()),
        "slept 1500"
    );
    // What a direct call would have answered, errors included.
    let c = id_of(&line_call(d.tcp, "queue:add:boom:x"));
    let got = line_call(d.tcp, &format!("queue:get:id:{c}"));
    assert!(got.starts_with("500:RangeError: out of range"), "{got}");
    // Unknown ids.
    let none = "0193d4b2-0000-7000-8000-000000000000";
    for req in [
        format!("queue:get:id:{none}"),
        format!("queue:check:id:{none}"),
        "queue:check:id:nope".to_owned(),
    ] {
        let got = line_call(d.tcp, &req);
        assert!(got.starts_with("404:"), "{req}: {got}");
    }
    // The queued jobs are ordinary jobs of the HTTP API.
    let rec = d.http_get(&format!("/v1/jobs/{a}"));
    assert_eq!(rec["state"], "succeeded");
    assert_eq!(rec["params"]["data"], "1500");
}

#[test]
fn a_udp_datagram_runs_its_job_fire_and_forget_and_durably() {
    let d = LineDaemon::start(BASE);
    udp_send(d.udp, b"mark:from udp\n");
    let (rec, result) = finished_job(&d, "mark");
    assert_eq!(rec["params"]["transport"], "udp");
    assert_eq!(result["state"], "succeeded", "{result}");
    assert_eq!(
        result["result"],
        serde_json::json!({"got": "from udp", "transport": "udp"})
    );
    // A bad datagram is dropped; the listener goes on.
    udp_send(d.udp, b"nosuch:x");
    udp_send(d.udp, b"\xff:x");
    udp_send(d.udp, b"queue:add:echo:queued by udp");
    let (_, result) = finished_job(&d, "echo");
    assert_eq!(result["result"], "queued by udp");
}

#[test]
fn module_names_are_cleaned_like_the_seed() {
    let d = LineDaemon::start(BASE);
    assert_eq!(
        php_call(d.tcp, b" my-ech@o_2 !:data"),
        "cleaned my-echo_2:data"
    );
    // No colon: the whole request is the name, the data is empty.
    assert_eq!(gap_call(d.tcp, "my-echo_2"), "cleaned my-echo_2:");
    // Cleaning leaves no way out of the jobs folder.
    assert_eq!(gap_call(d.tcp, "../echo:x"), "x");
    assert_eq!(gap_call(d.tcp, "e c h o:spaced"), "spaced");
}

#[test]
fn each_error_is_a_code_colon_message() {
    let d = LineDaemon::start(&format!(
        "[lines]\nmax_request_bytes = 4096\nidle_timeout_ms = 800\n{BASE}"
    ));
    let cases: [(&[u8], &str); 7] = [
        (b"nosuch:x", "404:"),
        (b"!!!:x", "400:"),
        (b"queue:nope:x", "400:"),
        (b"queue:get:0193", "400:"),
        (b"\xff\xfe:x", "400:"),
        // The seed's fail.js: a module without exports.
        (b"fail:x", "500:"),
        (b"boom:x", "500:RangeError: out of range"),
    ];
    for (req, want) in cases {
        let got = php_call(d.tcp, req);
        assert!(got.starts_with(want), "{req:?}: {got}");
        assert!(is_error(&got), "{got}");
    }
    let got = gap_call(d.tcp, &format!("echo:{}", "x".repeat(5000)));
    assert!(got.starts_with("413:"), "{got}");
    // Nothing sent: dropped after the idle timeout.
    let t = Instant::now();
    let mut idle = TcpStream::connect(d.tcp).unwrap();
    let got = read_all(&mut idle);
    assert!(got.starts_with("408:"), "{got}");
    assert!(t.elapsed() >= Duration::from_millis(800));
    // 503 (overloaded) is in the slowloris test. Nothing of this harmed the daemon.
    assert_eq!(php_call(d.tcp, b"echo:still here"), "still here");
}

#[test]
fn a_slowloris_does_not_delay_a_well_behaved_client_and_is_dropped() {
    let d = LineDaemon::start(&format!(
        "[lines]\nmax_connections = 4\nidle_timeout_ms = 1000\nrequest_timeout_ms = 2500\n{BASE}"
    ));
    assert_eq!(php_call(d.tcp, b"echo:warm"), "warm");
    let tcp = d.tcp;
    // Trickles a byte every 50 ms (faster than the 100 ms gap): the request never ends by itself.
    let slowloris = std::thread::spawn(move || {
        let t = Instant::now();
        let mut s = TcpStream::connect(tcp).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let _ = s.write_all(b"echo:");
        while t.elapsed() < Duration::from_secs(8) {
            if s.write_all(b"z").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut answer = Vec::new();
        let _ = std::io::Read::read_to_end(&mut s, &mut answer);
        (String::from_utf8_lossy(&answer).into_owned(), t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    assert_eq!(php_call(d.tcp, b"echo:fast"), "fast");
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "delayed: {:?}",
        t.elapsed()
    );
    let (answer, took) = slowloris.join().unwrap();
    assert!(answer.starts_with("408:"), "{answer:?}");
    assert!(took < Duration::from_secs(5), "dropped after {took:?}");

    // Over max_connections: 503 at once; the idle ones are dropped after the idle timeout and
    // the slots come back.
    let holders: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(d.tcp).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let mut refused = TcpStream::connect(d.tcp).unwrap();
    let got = read_all(&mut refused);
    assert!(got.starts_with("503:"), "{got}");
    assert!(
        t.elapsed() < Duration::from_millis(800),
        "{:?}",
        t.elapsed()
    );
    let got = eventually("a free slot", || {
        let got = php_call(d.tcp, b"echo:again");
        (!got.starts_with("503:")).then_some(got)
    });
    assert_eq!(got, "again");
    drop(holders);
}

#[test]
fn a_seed_module_with_texecute_and_uexecute_runs_unchanged() {
    let d = LineDaemon::start(BASE);
    // TExecute writes the reply from a callback and never ends the socket.
    assert_eq!(php_call(d.tcp, b"seedmod:hello"), "seedmod>HELLO");
    let id = id_of(&line_call(d.tcp, "queue:add:seedmod:queued"));
    assert_eq!(
        line_call(d.tcp, &format!("queue:get:id:{id}")),
        "seedmod>QUEUED"
    );
    // UExecute for datagrams; what it returns is kept as the result.
    udp_send(d.udp, b"seedmod:sid-1");
    let rec = eventually("the UDP seedmod job", || {
        let page = d.http_get("/v1/jobs?job=seedmod&include=params");
        page["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["params"]["transport"] == "udp")
            .cloned()
    });
    let result = d.http_get(&format!(
        "/v1/jobs/{}/result?wait=20",
        rec["id"].as_str().unwrap()
    ));
    assert_eq!(result["state"], "succeeded", "{result}");
    assert_eq!(result["result"], "logged sid-1");
}

#[test]
fn stopping_the_daemon_answers_a_waiting_client_503_naming_its_job() {
    let mut d = LineDaemon::start(BASE);
    let tcp = d.tcp;
    let waiting = std::thread::spawn(move || gap_call(tcp, "slow:3000"));
    eventually("the slow job to run", || {
        let page = d.http_get("/v1/jobs?job=slow&state=running");
        (!page["jobs"].as_array().unwrap().is_empty()).then_some(())
    });
    d.daemon.terminate();
    let answer = waiting.join().unwrap();
    assert!(answer.starts_with("503:"), "{answer}");
    assert!(answer.contains("queue:get:id:"), "{answer}");
}
