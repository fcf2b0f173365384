//! UDP answers: a job submitted by a datagram may answer it (the Node SDK's `UExecute(parts,
//! rinfo, answer)`): its worker emits the event [`UDP_ANSWER`] with `{"data", "encoding"}`
//! (`utf8`, or `latin1`: one character per byte, for binary), and the UDP listener sends `data` to the datagram's source from its
//! own socket (so the peer sees the answer come from the port it wrote to).
//!
//! The listener keeps each UDP job's source here until the job ends (its `job` change), at
//! most `udp_max_queued` of them (the jobs the listener admits anyway). An answer from a job
//! that runs on another node is not seen here (events are this node's): it is not sent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use offload_store::JobId;
use serde_json::Value;

/// The event name a job answers its datagram with.
pub(crate) const UDP_ANSWER: &str = "$offload/udp-answer";

/// The largest answer: one UDP datagram.
pub(crate) const MAX_ANSWER: usize = 65_507;

/// Answers that came before their job's source was recorded (the job ran faster than its
/// submit returned), kept this many at most.
const EARLY: usize = 256;

#[derive(Debug, Default)]
struct Maps {
    sources: HashMap<JobId, SocketAddr>,
    early: HashMap<JobId, Value>,
}

#[derive(Debug)]
pub(crate) struct Sources {
    map: Mutex<Maps>,
    max: usize,
}

impl Sources {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            map: Mutex::default(),
            max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers the source of UDP job `id` (not past `max`: that job's answer is not sent);
    /// an answer that came first is returned, to send now.
    pub(crate) fn insert(&self, id: JobId, peer: SocketAddr) -> Option<(SocketAddr, Vec<u8>)> {
        let early = {
            let mut maps = self.lock();
            if maps.sources.len() < self.max {
                maps.sources.insert(id, peer);
            }
            maps.early.remove(&id)
        };
        early.and_then(|data| self.answer(id, &data))
    }

    /// The job ended: its source is forgotten.
    pub(crate) fn ended(&self, id: JobId) {
        let mut maps = self.lock();
        maps.sources.remove(&id);
        maps.early.remove(&id);
    }

    /// Where an answer of `id` goes, and its bytes; `None` if it is not one of ours (kept a
    /// moment, in case its source is being recorded) or not a valid answer.
    pub(crate) fn answer(&self, id: JobId, data: &Value) -> Option<(SocketAddr, Vec<u8>)> {
        let peer = {
            let mut maps = self.lock();
            match maps.sources.get(&id) {
                Some(p) => *p,
                None => {
                    if maps.early.len() < EARLY {
                        maps.early.insert(id, data.clone());
                    }
                    return None;
                }
            }
        };
        let text = data.get("data").and_then(Value::as_str)?;
        let bytes = match data.get("encoding").and_then(Value::as_str) {
            Some("latin1") => text
                .chars()
                .map(|c| u8::try_from(u32::from(c)).ok())
                .collect::<Option<Vec<u8>>>()?,
            _ => text.as_bytes().to_vec(),
        };
        if bytes.len() > MAX_ANSWER {
            tracing::warn!(%peer, job = %id, bytes = bytes.len(), "udp line protocol: answer over one datagram, not sent");
            return None;
        }
        Some((peer, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_go_to_known_sources_only_text_or_bytes() {
        let s = Sources::new(1);
        let (a, b) = (JobId::now_v7(), JobId::now_v7());
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(s.insert(a, peer), None);
        assert_eq!(s.insert(b, peer), None); // over max: not kept
        assert_eq!(
            s.answer(a, &json!({"data": "hé"})),
            Some((peer, "hé".as_bytes().to_vec()))
        );
        assert_eq!(
            s.answer(a, &json!({"data": "\u{0}\u{ff}", "encoding": "latin1"})),
            Some((peer, vec![0, 255]))
        );
        assert_eq!(
            s.answer(a, &json!({"data": "ā", "encoding": "latin1"})),
            None
        );
        assert_eq!(s.answer(b, &json!({"data": "x"})), None);
        s.ended(a);
        assert_eq!(s.answer(a, &json!({"data": "x"})), None);
        // An answer before its source: sent when the source is recorded.
        let c = JobId::now_v7();
        let s = Sources::new(4);
        assert_eq!(s.answer(c, &json!({"data": "early"})), None);
        assert_eq!(s.insert(c, peer), Some((peer, b"early".to_vec())));
    }
}
