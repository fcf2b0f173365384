//! Random sequences of calls against a model of the job state machine: after every call each
//! job's state, attempt, node and cancel flag match the model, claims come in claim order,
//! and `counts` matches both the model and a count of the rows.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use offload_store::{
    CancelResult, Demand, JobId, JobState, SqliteOptions, SqliteStore, Store, StoreError,
    Synchronous, Transition,
};
use proptest::prelude::*;
use serde_json::json;

const POOLS: [&str; 2] = ["node", "python"];
const NODES: [&str; 2] = ["node-a", "node-b"];
const FAR: i64 = 4_102_444_800_000;

#[derive(Debug, Clone)]
enum Op {
    Submit {
        pool: usize,
        priority: i32,
        delayed: bool,
        key: Option<u8>,
    },
    Claim {
        node: usize,
        pool: usize,
        n: usize,
    },
    Complete {
        pick: usize,
        kind: u8,
        stale: bool,
    },
    Cancel {
        pick: usize,
    },
    Retry {
        pick: usize,
    },
    Recover {
        node: Option<usize>,
    },
    Purge,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2usize, -1..2i32, prop::bool::weighted(0.2), prop::option::weighted(0.3, 0..3u8))
            .prop_map(|(pool, priority, delayed, key)| Op::Submit { pool, priority, delayed, key }),
        3 => (0..2usize, 0..2usize, 0..4usize).prop_map(|(node, pool, n)| Op::Claim { node, pool, n }),
        3 => (any::<usize>(), 0..4u8, prop::bool::weighted(0.2))
            .prop_map(|(pick, kind, stale)| Op::Complete { pick, kind, stale }),
        1 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Retry { pick }),
        1 => prop::option::of(0..2usize).prop_map(|node| Op::Recover { node }),
        1 => Just(Op::Purge),
    ]
}

#[derive(Debug, Clone, PartialEq)]
struct Job {
    pool: String,
    priority: i32,
    state: JobState,
    attempt: u32,
    node: Option<String>,
    cancel_requested: bool,
}

#[derive(Default)]
struct Model {
    jobs: BTreeMap<JobId, Job>,
    keys: BTreeMap<u8, JobId>,
}

impl Model {
    fn counts(&self) -> offload_store::Counts {
        let mut c = offload_store::Counts::new();
        for j in self.jobs.values() {
            *c.entry((j.pool.clone(), j.state)).or_default() += 1;
        }
        c
    }

    fn pick(&self, pick: usize, filter: impl Fn(&Job) -> bool) -> Option<JobId> {
        let ids: Vec<_> = self
            .jobs
            .iter()
            .filter(|(_, j)| filter(j))
            .map(|(id, _)| *id)
            .collect();
        (!ids.is_empty()).then(|| ids[pick % ids.len()])
    }
}

async fn step(store: &SqliteStore, m: &mut Model, op: Op) -> Result<(), TestCaseError> {
    match op {
        Op::Submit {
            pool,
            priority,
            delayed,
            key,
        } => {
            let mut j = job("j", POOLS[pool]);
            j.priority = priority;
            j.run_at = delayed.then_some(FAR);
            j.idempotency_key = key.map(|k| format!("key-{k}"));
            let s = store.submit(vec![j], WINDOW).await.unwrap().remove(0);
            if let Some(first) = key.and_then(|k| m.keys.get(&k)) {
                prop_assert!(s.duplicate);
                prop_assert_eq!(s.id, *first);
                prop_assert_eq!(s.state, m.jobs[first].state);
            } else {
                prop_assert!(!s.duplicate);
                let state = if delayed {
                    JobState::Scheduled
                } else {
                    JobState::Queued
                };
                prop_assert_eq!(s.state, state);
                m.jobs.insert(
                    s.id,
                    Job {
                        pool: POOLS[pool].into(),
                        priority,
                        state,
                        attempt: 0,
                        node: None,
                        cancel_requested: false,
                    },
                );
                if let Some(k) = key {
                    m.keys.insert(k, s.id);
                }
            }
        }
        Op::Claim { node, pool, n } => {
            // Failed jobs are retried at run_at 1 (due): they are queued first (a claim of
            // nothing does nothing).
            for j in m.jobs.values_mut() {
                if j.state == JobState::Failed && n > 0 {
                    j.state = JobState::Queued;
                }
            }
            let mut queued = Vec::new();
            for (id, j) in &m.jobs {
                if j.pool == POOLS[pool] && j.state == JobState::Queued {
                    queued.push((j.priority, store.get(*id).await.unwrap().run_at, *id));
                }
            }
            queued.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            let expected: Vec<JobId> = queued.iter().take(n).map(|q| q.2).collect();
            let demand = [Demand {
                pool: POOLS[pool].into(),
                n,
            }];
            let got = store.claim(NODES[node], &demand, LEASE).await.unwrap();
            let got_ids: Vec<JobId> = got.iter().map(|c| c.id).collect();
            prop_assert_eq!(&got_ids, &expected);
            for c in got {
                let j = m.jobs.get_mut(&c.id).unwrap();
                j.state = JobState::Running;
                j.attempt += 1;
                j.node = Some(NODES[node].into());
                prop_assert_eq!(c.attempt, j.attempt);
            }
        }
        Op::Complete { pick, kind, stale } => {
            let Some(id) = m.pick(pick, |j| j.state == JobState::Running) else {
                return Ok(());
            };
            let j = m.jobs.get_mut(&id).unwrap();
            let then = match kind {
                0 => Transition::Succeeded { result: json!(1) },
                1 => Transition::Retry {
                    error: error("e"),
                    run_at: 1,
                },
                2 => Transition::Dead { error: error("e") },
                _ => Transition::Cancelled,
            };
            let mut c = completion(id, j.attempt + u32::from(stale), then);
            c.node = j.node.clone().unwrap();
            store.complete(vec![c]).await.unwrap();
            if !stale {
                j.state = match kind {
                    0 => JobState::Succeeded,
                    1 if j.cancel_requested => JobState::Cancelled,
                    1 => JobState::Failed,
                    2 => JobState::Dead,
                    _ => JobState::Cancelled,
                };
                j.node = None;
            }
        }
        Op::Cancel { pick } => {
            let Some(id) = m.pick(pick, |_| true) else {
                return Ok(());
            };
            let j = m.jobs.get_mut(&id).unwrap();
            let got = store.cancel(id).await.unwrap();
            let expected = match j.state {
                JobState::Scheduled | JobState::Queued | JobState::Failed => {
                    j.state = JobState::Cancelled;
                    CancelResult::Cancelled
                }
                JobState::Running => {
                    j.cancel_requested = true;
                    CancelResult::Requested
                }
                s => CancelResult::AlreadyDone(s),
            };
            prop_assert_eq!(got, expected);
        }
        Op::Retry { pick } => {
            let Some(id) = m.pick(pick, |_| true) else {
                return Ok(());
            };
            let j = m.jobs.get_mut(&id).unwrap();
            let got = store.retry(id).await;
            if matches!(j.state, JobState::Dead | JobState::Cancelled) {
                prop_assert_eq!(got.unwrap(), JobState::Queued);
                // Attempts are numbered on after a retry (schema v10).
                j.state = JobState::Queued;
                j.cancel_requested = false;
            } else {
                prop_assert!(matches!(got, Err(StoreError::Conflict(_))));
            }
        }
        Op::Recover { node } => {
            let node = node.map(|n| NODES[n]);
            let got = store.recover(node).await.unwrap();
            let mut expected = 0;
            for j in m.jobs.values_mut() {
                if j.state == JobState::Running && node.is_some() && j.node.as_deref() == node {
                    expected += 1;
                    j.state = if j.cancel_requested {
                        JobState::Cancelled
                    } else {
                        JobState::Queued
                    };
                    j.node = None;
                }
            }
            prop_assert_eq!(got, expected);
        }
        Op::Purge => {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let got = store.purge(offload_store::now_ms()).await.unwrap();
            let before = m.jobs.len();
            m.jobs.retain(|_, j| !j.state.is_terminal());
            let jobs = &m.jobs;
            m.keys.retain(|_, id| jobs.contains_key(id));
            prop_assert_eq!(got, (before - m.jobs.len()) as u64);
        }
    }
    Ok(())
}

async fn check(dir: &std::path::Path, store: &SqliteStore, m: &Model) -> Result<(), TestCaseError> {
    for (id, j) in &m.jobs {
        let r = store.get(*id).await.unwrap();
        let actual = Job {
            pool: r.pool,
            priority: r.priority,
            state: r.state,
            attempt: r.attempt,
            node: r.node,
            cancel_requested: r.cancel_requested,
        };
        prop_assert_eq!(&actual, j, "job {}", id);
    }
    prop_assert_eq!(store.counts().await.unwrap(), m.counts());
    check_counts(dir, store).await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_store_follows_the_state_machine(ops in prop::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            // Durability is not what this test is about: skip the fsyncs.
            let options = SqliteOptions::default().with_synchronous(Synchronous::Normal);
            let store = SqliteStore::open_with(dir.path(), options).unwrap();
            let mut model = Model::default();
            for op in ops {
                step(&store, &mut model, op).await?;
                check(dir.path(), &store, &model).await?;
            }
            Ok::<(), TestCaseError>(())
        })?;
    }
}
