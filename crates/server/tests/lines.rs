//! The seed's TCP/UDP line protocol end to end (docs/line-protocol.md): a daemon booted in this
//! process with `--tcp --udp` on its own runtime (`common::lines::start`), real sockets, real
//! workers, the job files of `tests/fixtures/lines/`. The tests are plain `#[test]`s with
//! blocking clients, as the seed's PHP clients are.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::lines::{
    gap_call, half_close_call, http_get, is_error, line_call, php_call, read_all, start, udp_send,
};
use common::Running;
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
fn finished_job(d: &Running, job: &str) -> (Value, Value) {
    let rec = eventually(&format!("a {job} job"), || {
        let page = http_get(d, &format!("/v1/jobs?job={job}&include=params"));
        page["jobs"].as_array().unwrap().first().cloned()
    });
    let id = rec["id"].as_str().unwrap();
    let result = http_get(d, &format!("/v1/jobs/{id}/result?wait=20"));
    (rec, result)
}

#[test]
fn a_client_like_the_seeds_php_example_gets_its_answer() {
    let d = start(BASE);
    // One write, no newline, no half-close, one fgets($fp, 1024).
    assert_eq!(php_call(d.tcp(), b"echo:hello world"), "hello world");
    // The data keeps its colons and newlines (the PHP example sends a whole stylesheet).
    let css = "@c: red;\na { color: @c; }\nb:hover {\n  x: y;\n}";
    assert_eq!(gap_call(d.tcp(), &format!("echo:{css}")), css);
    // A JSON result is written serialized; this is what a job receives.
    let answer = gap_call(d.tcp(), "params:a:b\nc");
    let v: Value = serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"));
    assert_eq!(v["module"], "params");
    assert_eq!(v["data"], "a:b\nc");
    assert_eq!(v["parts"], serde_json::json!(["params", "a:b\nc"]));
    assert_eq!(v["transport"], "tcp");
    assert!(v["peer"].as_str().unwrap().starts_with("127.0.0.1:"), "{v}");
    // A Python job receives the same params.
    assert_eq!(php_call(d.tcp(), b"pyrev:abc"), "cba");
    // Each call is a durable job like any other.
    let page = http_get(&d, "/v1/jobs?job=echo&state=succeeded");
    assert_eq!(page["jobs"].as_array().unwrap().len(), 2, "{page}");
}

/// What ends a request is shown by what can end it: with the gap and the request timeout ten
/// minutes long, only a half-close or a final newline can (else the client's read guard fails);
/// with a short gap and nothing else, only the gap can.
#[test]
fn a_request_ends_at_half_close_at_a_newline_or_after_a_quiet_gap() {
    let d = start(&format!(
        "[lines]\nend_gap_ms = 600000\nrequest_timeout_ms = 600000\n{BASE}"
    ));
    assert_eq!(half_close_call(d.tcp(), b"echo:warm"), "warm");
    // Two writes, newlines inside: one request, ended by the half-close.
    let mut s = common::lines::connect(d.tcp());
    s.write_all(b"echo:a\nb").unwrap();
    s.write_all(b":c\n\nd").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_all(&mut s), "a\nb:c\n\nd");
    assert_eq!(line_call(d.tcp(), "echo:line one"), "line one");
    // Newlines inside one write do not end the request; the final one does.
    assert_eq!(line_call(d.tcp(), "echo:x\ny"), "x\ny");
    d.stop_blocking();

    let d = start(&format!(
        "[lines]\nend_gap_ms = 200\nrequest_timeout_ms = 600000\nidle_timeout_ms = 600000\n{BASE}"
    ));
    assert_eq!(gap_call(d.tcp(), "echo:quiet"), "quiet");
    d.stop_blocking();
}

#[test]
fn queue_add_check_get_round_trip() {
    let d = start(BASE);
    let a = id_of(&line_call(d.tcp(), "queue:add:slow:1500"));
    eventually("the first job to start", || {
        (line_call(d.tcp(), &format!("queue:check:id:{a}")) == "1").then_some(())
    });
    // The pool has one worker: the second job waits.
    let b = id_of(&php_call(d.tcp(), b"queue:add:slow:10"));
    assert_eq!(line_call(d.tcp(), &format!("queue:check:id:{b}")), "0");
    assert_eq!(line_call(d.tcp(), &format!("queue:get:id:{b}")), "slept 10");
    assert_eq!(line_call(d.tcp(), &format!("queue:check:id:{b}")), "2");
    assert_eq!(line_call(d.tcp(), &format!("queue:check:id:{a}")), "2");
    assert_eq!(
        php_call(d.tcp(), format!("queue:get:id:{a}").as_bytes()),
        "slept 1500"
    );
    // What a direct call would have answered, errors included.
    let c = id_of(&line_call(d.tcp(), "queue:add:boom:x"));
    let got = line_call(d.tcp(), &format!("queue:get:id:{c}"));
    assert!(got.starts_with("500:RangeError: out of range"), "{got}");
    // Unknown ids.
    let none = "0193d4b2-0000-7000-8000-000000000000";
    for req in [
        format!("queue:get:id:{none}"),
        format!("queue:check:id:{none}"),
        "queue:check:id:nope".to_owned(),
    ] {
        let got = line_call(d.tcp(), &req);
        assert!(got.starts_with("404:"), "{req}: {got}");
    }
    // The queued jobs are ordinary jobs of the HTTP API.
    let rec = http_get(&d, &format!("/v1/jobs/{a}"));
    assert_eq!(rec["state"], "succeeded");
    assert_eq!(rec["params"]["data"], "1500");
}

#[test]
fn a_udp_datagram_runs_its_job_fire_and_forget_and_durably() {
    let d = start(BASE);
    udp_send(d.udp(), b"mark:from udp\n");
    let (rec, result) = finished_job(&d, "mark");
    assert_eq!(rec["params"]["transport"], "udp");
    assert_eq!(result["state"], "succeeded", "{result}");
    assert_eq!(
        result["result"],
        serde_json::json!({"got": "from udp", "transport": "udp"})
    );
    // A bad datagram is dropped; the listener goes on.
    udp_send(d.udp(), b"nosuch:x");
    udp_send(d.udp(), b"\xff:x");
    udp_send(d.udp(), b"queue:add:echo:queued by udp");
    let (_, result) = finished_job(&d, "echo");
    assert_eq!(result["result"], "queued by udp");
}

#[test]
fn module_names_are_cleaned_like_the_seed() {
    let d = start(BASE);
    assert_eq!(
        php_call(d.tcp(), b" my-ech@o_2 !:data"),
        "cleaned my-echo_2:data"
    );
    // No colon: the whole request is the name, the data is empty.
    assert_eq!(gap_call(d.tcp(), "my-echo_2"), "cleaned my-echo_2:");
    // Cleaning leaves no way out of the jobs folder.
    assert_eq!(gap_call(d.tcp(), "../echo:x"), "x");
    assert_eq!(gap_call(d.tcp(), "e c h o:spaced"), "spaced");
}

#[test]
fn each_error_is_a_code_colon_message() {
    let d = start(&format!(
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
        let got = php_call(d.tcp(), req);
        assert!(got.starts_with(want), "{req:?}: {got}");
        assert!(is_error(&got), "{got}");
    }
    let got = gap_call(d.tcp(), &format!("echo:{}", "x".repeat(5000)));
    assert!(got.starts_with("413:"), "{got}");
    // Nothing sent: dropped by the idle timeout (its answer names it).
    let mut idle = TcpStream::connect(d.tcp()).unwrap();
    let got = read_all(&mut idle);
    assert!(got.starts_with("408:"), "{got}");
    assert!(got.contains("nothing received within 800 ms"), "{got}");
    // 503 (overloaded) is in the slowloris test. Nothing of this harmed the daemon.
    assert_eq!(php_call(d.tcp(), b"echo:still here"), "still here");
}

/// Whether `s` is open with nothing to read yet (neither answered nor closed by the daemon).
fn still_waiting(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let waiting = matches!(
        s.peek(&mut [0u8; 1]),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
    );
    s.set_nonblocking(false).unwrap();
    waiting
}

/// The promises by order of events, not by time: the well-behaved client is answered while the
/// slowloris is still connected and unanswered; the slowloris (its request never ends by
/// itself: the gap is ten minutes) is dropped by the request timeout; a connection over the
/// limit is refused while the ones holding the slots are still open; the idle ones are dropped
/// and their slots come back.
#[test]
fn a_slowloris_does_not_delay_a_well_behaved_client_and_is_dropped() {
    let d = start(&format!(
        "[lines]\nmax_connections = 4\nidle_timeout_ms = 1000\nrequest_timeout_ms = 5000\nend_gap_ms = 600000\n{BASE}"
    ));
    assert_eq!(half_close_call(d.tcp(), b"echo:warm"), "warm");
    let tcp = d.tcp();
    let answered = Arc::new(AtomicBool::new(false));
    let (started_tx, started_rx) = mpsc::channel();
    let done = Arc::clone(&answered);
    // Trickles a byte every 50 ms until the daemon closes the connection.
    let slowloris = std::thread::spawn(move || {
        let s = common::lines::connect(tcp);
        let mut writer = s.try_clone().unwrap();
        let trickle = std::thread::spawn(move || {
            let _ = writer.write_all(b"echo:z");
            let _ = started_tx.send(());
            while writer.write_all(b"z").is_ok() {
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let mut s = s;
        let mut answer = Vec::new();
        let _ = std::io::Read::read_to_end(&mut s, &mut answer);
        done.store(true, Ordering::SeqCst);
        let _ = s.shutdown(std::net::Shutdown::Both);
        trickle.join().unwrap();
        String::from_utf8_lossy(&answer).into_owned()
    });
    started_rx.recv().unwrap();
    assert_eq!(half_close_call(d.tcp(), b"echo:fast"), "fast");
    assert!(
        !answered.load(Ordering::SeqCst),
        "the slowloris was dropped before the fast client was answered"
    );
    let answer = slowloris.join().unwrap();
    assert!(answer.starts_with("408:"), "{answer:?}");
    assert!(
        answer.contains("did not arrive within 5000 ms"),
        "{answer:?}"
    );

    // Over max_connections: 503 while the four holding the slots are still open and waiting
    // (the slowloris's slot may take a moment to come back: until then a holder is the one
    // refused, and the round is tried again).
    let (holders, got) = eventually("four holders and a refusal", || {
        let holders: Vec<TcpStream> = (0..4)
            .map(|_| TcpStream::connect(d.tcp()).unwrap())
            .collect();
        let mut refused = common::lines::connect(d.tcp());
        let got = read_all(&mut refused);
        holders.iter().all(still_waiting).then_some((holders, got))
    });
    assert!(got.starts_with("503:"), "{got}");
    // The idle ones are dropped by the idle timeout (the test still holds them) and the slots
    // come back.
    let got = eventually("a free slot", || {
        let got = line_call(d.tcp(), "echo:again");
        (!got.starts_with("503:")).then_some(got)
    });
    assert_eq!(got, "again");
    for mut h in holders {
        let got = read_all(&mut h);
        assert!(got.starts_with("408:"), "{got}");
    }
}

#[test]
fn a_seed_module_with_texecute_and_uexecute_runs_unchanged() {
    let d = start(BASE);
    // TExecute writes the reply from a callback and never ends the socket.
    assert_eq!(php_call(d.tcp(), b"seedmod:hello"), "seedmod>HELLO");
    let id = id_of(&line_call(d.tcp(), "queue:add:seedmod:queued"));
    assert_eq!(
        line_call(d.tcp(), &format!("queue:get:id:{id}")),
        "seedmod>QUEUED"
    );
    // UExecute for datagrams; what it returns is kept as the result.
    udp_send(d.udp(), b"seedmod:sid-1");
    let rec = eventually("the UDP seedmod job", || {
        let page = http_get(&d, "/v1/jobs?job=seedmod&include=params");
        page["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["params"]["transport"] == "udp")
            .cloned()
    });
    let result = http_get(
        &d,
        &format!("/v1/jobs/{}/result?wait=20", rec["id"].as_str().unwrap()),
    );
    assert_eq!(result["state"], "succeeded", "{result}");
    assert_eq!(result["result"], "logged sid-1");
}

#[test]
fn a_seed_module_gets_the_real_client_socket_reads_more_writes_binary_and_ends() {
    use std::io::Read;
    let d = start(BASE);
    let mut s = common::lines::connect(d.tcp());
    s.write_all(b"sockmod:first\n").unwrap();
    // Binary, straight from the module on the client's own connection.
    let mut head = [0u8; 4];
    s.read_exact(&mut head).unwrap();
    assert_eq!(head, [0, 1, 2, 255]);
    // What the client sends after its request is the module's to read.
    s.write_all(b"more").unwrap();
    let mut rest = String::new();
    s.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "got:more for first");
    // The daemon wrote nothing of its own; the job's result says the client was answered.
    let (_rec, result) = finished_job(&d, "sockmod");
    assert_eq!(result["state"], "succeeded", "{result}");
    assert_eq!(result["result"]["$offload"], "client-replied", "{result}");
    assert_eq!(result["result"]["bytes"], 4 + "got:more for first".len());
    // The seed's own modules still answer through it unchanged, and other jobs as before.
    assert_eq!(php_call(d.tcp(), b"seedmod:again"), "seedmod>AGAIN");
    assert_eq!(line_call(d.tcp(), "echo:plain"), "plain");
}

#[test]
fn a_udp_module_gets_the_datagrams_source_and_answers_it_from_the_daemons_port() {
    let d = start(BASE);
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(common::lines::ANSWER_WAIT))
        .unwrap();
    s.send_to(b"sockmod:ping", d.udp()).unwrap();
    let mut buf = [0u8; 1024];
    let (n, from) = s.recv_from(&mut buf).unwrap();
    assert_eq!(
        from,
        d.udp(),
        "the answer comes from the port the datagram went to"
    );
    assert_eq!(&buf[..n], b"re:ping from 127.0.0.1 \x00\xff");
}

#[test]
fn stopping_the_daemon_answers_a_waiting_client_503_naming_its_job() {
    let d = start(BASE);
    let tcp = d.tcp();
    let waiting = std::thread::spawn(move || gap_call(tcp, "slow:3000"));
    eventually("the slow job to run", || {
        let page = http_get(&d, "/v1/jobs?job=slow&state=running");
        (!page["jobs"].as_array().unwrap().is_empty()).then_some(())
    });
    d.stop_blocking();
    let answer = waiting.join().unwrap();
    assert!(answer.starts_with("503:"), "{answer}");
    assert!(answer.contains("queue:get:id:"), "{answer}");
}
