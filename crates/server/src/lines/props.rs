//! Property-based tests of the line protocol's request parser (`request.rs`) and framing
//! (`read.rs`): arbitrary bytes and structure-aware requests never panic and give a request or
//! a typed `NNN:` error; an endless request is refused with `413:` after reading at most the
//! size limit plus one chunk. `PROPTEST_CASES=1000000 cargo nextest run -p offload-server
//! props` runs a long campaign.

use std::pin::Pin;
use std::task::{Context, Poll};

use proptest::prelude::*;
use tokio::io::{AsyncRead, ReadBuf};

use super::read::{self, ReadError};
use super::reply::LineError;
use super::request::{clean_module, parse, Call, Request};
use crate::config::LineLimits;

fn is_typed(e: &LineError) -> bool {
    let r = e.render();
    matches!(e.code, 400 | 404) && !r.contains('\n') && r.starts_with(&format!("{}:", e.code))
}

/// A module name as clients write it: mostly name characters, some noise the seed removes.
fn module() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,12}[ .$@/!é]{0,3}[A-Za-z0-9_-]{0,4}"
}

/// 2,000 cases per property, or `PROPTEST_CASES` when set (a long campaign).
fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 2_000;
    }
    // Some generated calls are rejected by `prop_assume!` (about 2 %); the default budget of
    // 1,024 rejects ends a long campaign early (found by bench/fuzz at 58,000 cases).
    c.max_global_rejects = c.max_global_rejects.max(c.cases / 10);
    c
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_give_a_request_or_a_typed_error(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        match parse(&bytes) {
            Ok(Request::Call(c) | Request::Add(c)) => {
                prop_assert!(!c.module.is_empty());
                prop_assert_eq!(clean_module(&c.module), c.module.clone());
            }
            Ok(Request::Get(_) | Request::Check(_)) => {}
            Err(e) => prop_assert!(is_typed(&e), "{:?}", e),
        }
    }

    #[test]
    fn text_with_colons_and_newlines_never_panics(text in "[a-z:\\n\\r \\t$]{0,64}") {
        if let Err(e) = parse(text.as_bytes()) {
            prop_assert!(is_typed(&e), "{:?}", e);
        }
    }

    #[test]
    fn a_call_keeps_its_data_whole(m in module(), data in "(?s).{0,200}") {
        let cleaned = clean_module(&m);
        prop_assume!(cleaned != "queue" && !data.ends_with('\r'));
        // One final newline is the client's ending, not data: data ending in one keeps it
        // only when the client adds another.
        let wire = format!("{m}:{data}\n");
        prop_assert_eq!(
            parse(wire.as_bytes()).unwrap(),
            Request::Call(Call { module: cleaned, data })
        );
    }

    #[test]
    fn queue_commands_parse_or_are_typed_errors(
        m in module(),
        data in "[^\\n]{0,100}",
        action in "[a-z]{0,8}",
        id in proptest::option::of(any::<u128>()),
        pad in "[ \\t]{0,2}",
    ) {
        let cleaned = clean_module(&m);
        prop_assume!(cleaned != "queue");
        prop_assert_eq!(
            parse(format!("queue:add:{m}:{data}").as_bytes()).unwrap(),
            Request::Add(Call { module: cleaned, data })
        );
        let uuid = uuid::Uuid::from_u128(id.unwrap_or(7));
        let arg = match id {
            Some(_) => format!("id:{pad}{uuid}{pad}"),
            None => format!("id:{pad}not-an-id"),
        };
        let got = parse(format!("queue:{action}:{arg}").as_bytes());
        match (action.as_str(), id, got) {
            ("get", Some(_), Ok(Request::Get(g))) | ("check", Some(_), Ok(Request::Check(g))) => {
                prop_assert_eq!(g, uuid);
            }
            ("get" | "check", None, Err(e)) => prop_assert_eq!(e.code, 404),
            ("add", _, Ok(Request::Add(_))) => {}
            ("add", _, Err(e)) => prop_assert_eq!(e.code, 400),
            (_, _, Err(e)) => prop_assert_eq!(e.code, 400),
            (a, i, other) => prop_assert!(false, "queue:{} {:?}: {:?}", a, i, other),
        }
    }

    #[test]
    fn an_endless_request_is_refused_after_at_most_the_limit_plus_a_chunk(
        max in 16usize..8192,
        chunk in 1usize..5000,
    ) {
        let limits = LineLimits { max_request: max, ..LineLimits::default() };
        let mut endless = Endless { chunk, served: 0 };
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let got = rt.block_on(read::request(&mut endless, &limits));
        match got {
            Err(ReadError::Answer(e)) => prop_assert_eq!(e.code, 413),
            other => prop_assert!(false, "{:?}", other.map(|(b, e)| (b.len(), e))),
        }
        // What was read (and buffered) is bounded by the limit and one read.
        prop_assert!(endless.served <= max + 16 * 1024, "{} read", endless.served);
    }
}

/// A client that never stops sending: `chunk` bytes per read, no newline, no pause.
struct Endless {
    chunk: usize,
    served: usize,
}

impl AsyncRead for Endless {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.chunk.min(buf.remaining());
        buf.put_slice(&vec![b'x'; n]);
        self.served += n;
        Poll::Ready(Ok(()))
    }
}
