//! Each pick is a structured TRACE event carrying the algorithm and the chosen id.
//!
//! Alone in its own test binary: tracing caches per-callsite interest process-wide, and a
//! thread-local subscriber racing other tests' first events would make this flaky.

use std::fmt;
use std::sync::{Arc, Mutex};

use offload_balance::{Algorithm, LoadBalancer, PickContext, Target};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// The fields of one event, as `(name, value)` text.
type Fields = Vec<(String, String)>;

/// A subscriber that records the fields of every event.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Fields>>>);

struct Recorder(Fields);

impl Visit for Recorder {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut f = Recorder(vec![("level".into(), event.metadata().level().to_string())]);
        event.record(&mut f);
        self.0.lock().unwrap().push(f.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn each_pick_is_a_structured_trace_event() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(capture.clone()).unwrap();
    let mut lb = LoadBalancer::new([Target::new("w1")], Algorithm::P2c).unwrap();
    let held = lb.pick_one(&PickContext::new()).unwrap();
    lb.wipe();
    assert!(lb.pick_one(&PickContext::new()).is_none());
    drop(held);

    let events = capture.0.lock().unwrap().clone();
    let has = |ev: &Fields, k: &str, v: &str| ev.iter().any(|(a, b)| a == k && b == v);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(has(&events[0], "level", "TRACE"), "{events:?}");
    assert!(
        has(&events[0], "algorithm", "p2c") && has(&events[0], "target", "w1"),
        "{events:?}"
    );
    assert!(
        has(&events[1], "algorithm", "p2c") && has(&events[1], "targets", "0"),
        "{events:?}"
    );
}
