//! `NativeBalancer`: offload-balance's 13 algorithms for JavaScript.

use std::collections::HashMap;

use napi_derive::napi;
use offload_balance::{
    Algorithm, Key, LoadBalancer, LoadSample, ParamsUpdate, Pick, PickContext, Target, TargetId,
};
use serde::Deserialize;

use crate::{js_error, parse};

#[derive(Deserialize)]
struct TargetSpec {
    id: TargetId,
    #[serde(default)]
    weight: Option<f64>,
    #[serde(default)]
    capacity: Option<u64>,
}

fn target(t: TargetSpec) -> Target {
    let mut out = Target::new(t.id);
    if let Some(w) = t.weight {
        out = out.with_weight(w);
    }
    out.with_capacity(t.capacity)
}

fn algorithm(name: &str) -> napi::Result<Algorithm> {
    name.parse::<Algorithm>()
        .map_err(|e| js_error("InvalidArgument", e))
}

fn lb_error(e: offload_balance::Error) -> napi::Error {
    js_error("InvalidArgument", e)
}

/// A load balancer over `{id, weight}` targets. Picks held with `acquire` count as in flight
/// until `release`.
#[napi]
pub struct NativeBalancer {
    lb: LoadBalancer,
    held: HashMap<u32, Pick>,
    next: u32,
}

#[napi]
impl NativeBalancer {
    /// `targets`: a JSON array of `{id, weight?, capacity?}`; `algorithm`: a name.
    #[napi(constructor)]
    pub fn new(targets: String, algorithm_name: String) -> napi::Result<Self> {
        let specs: Vec<TargetSpec> = parse("targets", &targets)?;
        let lb = LoadBalancer::new(specs.into_iter().map(target), algorithm(&algorithm_name)?)
            .map_err(lb_error)?;
        Ok(Self {
            lb,
            held: HashMap::new(),
            next: 1,
        })
    }

    fn pick_ids(&mut self, n: usize, key: Option<String>) -> Vec<Pick> {
        let key_value: Option<TargetId> = key
            .as_deref()
            .map(|k| serde_json::from_str::<TargetId>(k).unwrap_or_else(|_| TargetId::from(k)));
        let mut ctx = PickContext::default();
        if let Some(k) = &key_value {
            ctx = ctx.with_key(Key::from(k));
        }
        if n == 1 {
            self.lb.pick_one(&ctx).into_iter().collect()
        } else {
            self.lb.pick_multi(n, &ctx)
        }
    }

    /// Up to `n` distinct picks (JSON array of ids); released at once. `key` is JSON (a number
    /// or a string) for `specify` and `consistentHash`.
    #[napi]
    pub fn pick(&mut self, n: u32, key: Option<String>) -> String {
        let ids: Vec<TargetId> = self
            .pick_ids(n as usize, key)
            .iter()
            .map(|p| p.id().clone())
            .collect();
        serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into())
    }

    /// One pick held as in flight until `release(handle)`: JSON `{"handle", "id"}` or `null`.
    #[napi]
    pub fn acquire(&mut self, key: Option<String>) -> String {
        let Some(p) = self.pick_ids(1, key).pop() else {
            return "null".into();
        };
        let handle = self.next;
        self.next = self.next.wrapping_add(1).max(1);
        let out = serde_json::json!({"handle": handle, "id": p.id()}).to_string();
        self.held.insert(handle, p);
        out
    }

    /// Ends an acquired pick; false if unknown.
    #[napi]
    pub fn release(&mut self, handle: u32) -> bool {
        self.held.remove(&handle).is_some()
    }

    /// Adds a target (JSON `{id, weight?, capacity?}`).
    #[napi]
    pub fn add(&mut self, spec: String) -> napi::Result<()> {
        let t: TargetSpec = parse("target", &spec)?;
        self.lb.add(target(t)).map_err(lb_error)
    }

    /// Removes a target by id (JSON); false if absent.
    #[napi]
    pub fn del(&mut self, id: String) -> napi::Result<bool> {
        let id: TargetId = parse("id", &id)?;
        Ok(self.lb.del(&id).is_some())
    }

    /// Removes every target.
    #[napi]
    pub fn wipe(&mut self) {
        self.lb.wipe();
    }

    /// Replaces the targets (JSON array).
    #[napi]
    pub fn set_targets(&mut self, targets: String) -> napi::Result<()> {
        let specs: Vec<TargetSpec> = parse("targets", &targets)?;
        self.lb
            .set_targets(specs.into_iter().map(target))
            .map_err(lb_error)
    }

    /// Changes the algorithm.
    #[napi]
    pub fn set_algorithm(&mut self, name: String) -> napi::Result<()> {
        self.lb.set_algorithm(algorithm(&name)?);
        Ok(())
    }

    /// The algorithm's name.
    #[napi]
    pub fn algorithm(&self) -> String {
        self.lb.algorithm().to_string()
    }

    /// Updates a target's weight and/or its load sample (cpu percent, memory bytes).
    #[napi]
    pub fn update(
        &mut self,
        id: String,
        weight: Option<f64>,
        cpu: Option<f64>,
        memory: Option<f64>,
    ) -> napi::Result<()> {
        let id: TargetId = parse("id", &id)?;
        let mut u = ParamsUpdate::new();
        if let Some(w) = weight {
            u = u.weight(w);
        }
        if cpu.is_some() || memory.is_some() {
            u = u.load(LoadSample::new(
                cpu.unwrap_or(0.0),
                memory.unwrap_or(0.0) as u64,
            ));
        }
        self.lb.update_params(&id, u).map_err(lb_error)
    }

    /// The targets: JSON array of `{id, weight, inFlight}`.
    #[napi]
    pub fn targets(&self) -> String {
        let v: Vec<serde_json::Value> = self
            .lb
            .targets()
            .map(|t| {
                serde_json::json!({
                    "id": t.id,
                    "weight": t.weight,
                    "inFlight": self.lb.in_flight(&t.id).unwrap_or(0),
                })
            })
            .collect();
        serde_json::Value::Array(v).to_string()
    }

    /// Every algorithm name.
    #[napi]
    pub fn algorithms() -> Vec<String> {
        Algorithm::ALL.iter().map(ToString::to_string).collect()
    }
}
