//! Any sequence of add / del / pick / pick_multi / drop / set_algorithm / refresh / update /
//! clean / wipe / set_targets: nothing panics, and after every step the balancer agrees with a
//! simple model:
//!
//! * the target list (ids, order, weights, capacities) is the model's;
//! * each target's in-flight count is the number of live picks made since it was (re)added;
//! * every pick is of a present, eligible target (filter passed, below capacity), `pick_multi`
//!   picks are distinct, and a pick is `None` only when no target is eligible (for `specify`:
//!   unless the keyed target is eligible);
//! * `first` picks the first eligible target, `minimumConnection` one with the fewest in flight,
//!   `specify` the keyed one;
//! * rejected calls (bad weight, duplicate id, unknown id) change nothing.

use offload_balance::{
    Algorithm, Error, LoadBalancer, LoadSample, ParamsUpdate, Pick, PickContext, Target, TargetId,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use rand::rngs::SmallRng;
use rand::SeedableRng;

fn config() -> Config {
    Config {
        cases: 160,
        rng_seed: RngSeed::Fixed(0x00a1_10b5),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Few ids, so operations collide: integers 0..5 and the strings "0", "a", "b".
fn id() -> impl Strategy<Value = TargetId> {
    prop_oneof![
        3 => (0_i64..5).prop_map(TargetId::Int),
        1 => prop::sample::select(vec!["0", "a", "b"]).prop_map(TargetId::from),
    ]
}

fn weight() -> impl Strategy<Value = f64> {
    prop::sample::select(vec![
        -1.0,
        -0.0,
        f64::NAN,
        f64::INFINITY,
        2e9,
        0.0,
        0.0,
        0.5,
        1.0,
        1.0,
        3.0,
        7.25,
    ])
}

fn capacity() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![3 => Just(None), 2 => (0_u64..4).prop_map(Some)]
}

fn target() -> impl Strategy<Value = Target> {
    (id(), weight(), capacity())
        .prop_map(|(id, w, c)| Target::new(id).with_weight(w).with_capacity(c))
}

/// Which ids a filter lets through: a bit per id of the domain.
type Mask = Option<u8>;

fn slot(id: &TargetId) -> u32 {
    match id {
        TargetId::Int(i) => *i as u32,
        TargetId::Str(s) => match s.as_str() {
            "0" => 5,
            "a" => 6,
            _ => 7,
        },
        _ => unreachable!(),
    }
}

fn passes(mask: Mask, id: &TargetId) -> bool {
    mask.is_none_or(|m| m & (1 << slot(id)) != 0)
}

#[derive(Debug, Clone)]
enum Op {
    Add(Target),
    Del(TargetId),
    Pick {
        key: Option<TargetId>,
        mask: Mask,
        hold: bool,
    },
    PickMulti {
        n: usize,
        key: Option<TargetId>,
        mask: Mask,
        hold: bool,
    },
    Release(prop::sample::Index),
    SetAlgorithm(prop::sample::Index),
    Refresh(Vec<(TargetId, f64, u64)>),
    Update {
        id: TargetId,
        weight: Option<f64>,
        capacity: Option<Option<u64>>,
    },
    Clean(Option<TargetId>),
    Wipe,
    SetTargets(Vec<Target>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => target().prop_map(Op::Add),
        2 => id().prop_map(Op::Del),
        8 => (prop::option::of(id()), prop::option::weighted(0.3, any::<u8>()), any::<bool>())
            .prop_map(|(key, mask, hold)| Op::Pick { key, mask, hold }),
        2 => (0_usize..5, prop::option::of(id()), prop::option::weighted(0.3, any::<u8>()), any::<bool>())
            .prop_map(|(n, key, mask, hold)| Op::PickMulti { n, key, mask, hold }),
        3 => any::<prop::sample::Index>().prop_map(Op::Release),
        2 => any::<prop::sample::Index>().prop_map(Op::SetAlgorithm),
        1 => prop::collection::vec((id(), prop::sample::select(vec![f64::NAN, -1.0, 0.0, 50.0, 350.0]), 0_u64..1_000), 0..5)
            .prop_map(Op::Refresh),
        1 => (id(), prop::option::of(weight()), prop::option::of(capacity()))
            .prop_map(|(id, weight, capacity)| Op::Update { id, weight, capacity }),
        1 => prop::option::of(id()).prop_map(Op::Clean),
        1 => Just(Op::Wipe),
        1 => prop::collection::vec(target(), 0..6).prop_map(Op::SetTargets),
    ]
}

/// The model: targets in order, each with the generation it was (re)added in.
#[derive(Default)]
struct Model {
    targets: Vec<(Target, u64)>,
    generation: u64,
    /// Live picks: id and the generation of the target they were made on.
    held: Vec<(Pick, u64)>,
}

impl Model {
    fn position(&self, id: &TargetId) -> Option<usize> {
        self.targets.iter().position(|(t, _)| t.id == *id)
    }

    fn in_flight(&self, id: &TargetId) -> u64 {
        let Some(i) = self.position(id) else { return 0 };
        let g = self.targets[i].1;
        self.held
            .iter()
            .filter(|(p, pg)| p.id() == id && *pg == g)
            .count() as u64
    }

    fn eligible(&self, mask: Mask, exclude: &[TargetId]) -> Vec<TargetId> {
        self.targets
            .iter()
            .filter(|(t, _)| passes(mask, &t.id) && !exclude.contains(&t.id))
            .filter(|(t, _)| t.capacity.is_none_or(|c| self.in_flight(&t.id) < c))
            .map(|(t, _)| t.id.clone())
            .collect()
    }

    fn fresh(&mut self, t: Target) -> (Target, u64) {
        self.generation += 1;
        (t, self.generation)
    }
}

fn valid(w: f64) -> bool {
    (0.0..=Target::MAX_WEIGHT).contains(&w)
}

/// Checks one pick against the model (before the pick is counted).
fn check_pick(
    lb: &LoadBalancer<SmallRng>,
    alg: Algorithm,
    model: &Model,
    key: Option<&TargetId>,
    mask: Mask,
    exclude: &[TargetId],
    got: Option<&Pick>,
) -> Result<(), TestCaseError> {
    let eligible = model.eligible(mask, exclude);
    let Some(p) = got else {
        match (alg, key) {
            (Algorithm::Specify, Some(k)) => {
                prop_assert!(!eligible.contains(k), "specify: {} was eligible", k)
            }
            (Algorithm::Specify, None) => {}
            _ => prop_assert!(
                eligible.is_empty(),
                "{}: None although {:?} are eligible",
                alg,
                eligible
            ),
        }
        return Ok(());
    };
    prop_assert!(
        eligible.contains(p.id()),
        "{}: picked {} not in eligible {:?}",
        alg,
        p.id(),
        eligible
    );
    match alg {
        Algorithm::First => prop_assert_eq!(p.id(), &eligible[0]),
        Algorithm::Specify => prop_assert_eq!(Some(p.id()), key),
        Algorithm::MinimumConnection => {
            let min = eligible.iter().map(|id| model.in_flight(id)).min().unwrap();
            // The pick is already counted: its target had `in_flight - 1` before.
            prop_assert_eq!(lb.in_flight(p.id()).unwrap() - 1, min);
        }
        _ => {}
    }
    Ok(())
}

fn check_state(lb: &LoadBalancer<SmallRng>, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(lb.len(), model.targets.len());
    for (got, (want, _)) in lb.targets().zip(&model.targets) {
        prop_assert_eq!(&got.id, &want.id);
        prop_assert!(
            got.weight == want.weight,
            "weight of {}: {} vs {}",
            got.id,
            got.weight,
            want.weight
        );
        prop_assert_eq!(got.capacity, want.capacity);
        prop_assert_eq!(
            lb.in_flight(&got.id),
            Some(model.in_flight(&got.id)),
            "in-flight of {}",
            got.id
        );
    }
    Ok(())
}

fn run(seed: u64, start: Vec<Target>, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    let mut alg = Algorithm::Polling;
    let built = LoadBalancer::from_rng(start.clone(), alg, SmallRng::seed_from_u64(seed));
    let mut lb = match built {
        Ok(lb) => {
            for t in start {
                let f = model.fresh(norm(t));
                model.targets.push(f);
            }
            lb
        }
        Err(_) => {
            prop_assert!(list_error(&start).is_some());
            LoadBalancer::from_rng([], alg, SmallRng::seed_from_u64(seed)).unwrap()
        }
    };
    for op in ops {
        match op {
            Op::Add(t) => {
                let r = lb.add(t.clone());
                if !valid(t.weight) {
                    prop_assert!(matches!(r, Err(Error::InvalidWeight { .. })), "{:?}", r);
                } else if model.position(&t.id).is_some() {
                    prop_assert_eq!(r, Err(Error::DuplicateId { id: t.id.clone() }));
                } else {
                    prop_assert_eq!(r, Ok(()));
                    let f = model.fresh(norm(t));
                    model.targets.push(f);
                }
            }
            Op::Del(id) => {
                let r = lb.del(&id);
                match model.position(&id) {
                    Some(i) => {
                        let (t, _) = model.targets.remove(i);
                        prop_assert_eq!(r.map(|t| t.id), Some(t.id));
                    }
                    None => prop_assert!(r.is_none()),
                }
            }
            Op::Pick { key, mask, hold } => {
                let filter = |id: &TargetId| passes(mask, id);
                let mut ctx = PickContext::new();
                if let Some(k) = &key {
                    ctx = ctx.with_key(k);
                }
                if mask.is_some() {
                    ctx = ctx.with_filter(&filter);
                }
                let got = lb.pick_one(&ctx);
                check_pick(&lb, alg, &model, key.as_ref(), mask, &[], got.as_ref())?;
                if let (Some(p), true) = (got, hold) {
                    let g = model.targets[model.position(p.id()).unwrap()].1;
                    model.held.push((p, g));
                }
            }
            Op::PickMulti { n, key, mask, hold } => {
                let filter = |id: &TargetId| passes(mask, id);
                let mut ctx = PickContext::new();
                if let Some(k) = &key {
                    ctx = ctx.with_key(k);
                }
                if mask.is_some() {
                    ctx = ctx.with_filter(&filter);
                }
                let before = model.eligible(mask, &[]);
                let picks = lb.pick_multi(n, &ctx);
                prop_assert!(picks.len() <= n);
                let mut seen: Vec<TargetId> = Vec::new();
                for p in &picks {
                    prop_assert!(
                        before.contains(p.id()),
                        "{}: {} was not eligible",
                        alg,
                        p.id()
                    );
                    prop_assert!(!seen.contains(p.id()), "{}: {} picked twice", alg, p.id());
                    seen.push(p.id().clone());
                }
                if alg != Algorithm::Specify {
                    prop_assert_eq!(
                        picks.len(),
                        n.min(before.len()),
                        "{}: eligible {:?}",
                        alg,
                        before
                    );
                }
                if hold {
                    for p in picks {
                        let g = model.targets[model.position(p.id()).unwrap()].1;
                        model.held.push((p, g));
                    }
                }
            }
            Op::Release(i) => {
                if !model.held.is_empty() {
                    let i = i.index(model.held.len());
                    drop(model.held.swap_remove(i));
                }
            }
            Op::SetAlgorithm(i) => {
                alg = Algorithm::ALL[i.index(Algorithm::ALL.len())];
                lb.set_algorithm(alg.name().parse().unwrap());
                prop_assert_eq!(lb.algorithm(), alg);
            }
            Op::Refresh(samples) => {
                let expected = samples
                    .iter()
                    .filter(|(id, ..)| model.position(id).is_some())
                    .count();
                let n = lb.refresh_params(
                    samples
                        .into_iter()
                        .map(|(id, cpu, mem)| (id, LoadSample::new(cpu, mem))),
                );
                prop_assert_eq!(n, expected);
            }
            Op::Update {
                id,
                weight,
                capacity,
            } => {
                let mut u = ParamsUpdate::new();
                if let Some(w) = weight {
                    u = u.weight(w);
                }
                if let Some(c) = capacity {
                    u = u.capacity(c);
                }
                let r = lb.update_params(&id, u);
                match model.position(&id) {
                    None => prop_assert_eq!(r, Err(Error::NotFound { id: id.clone() })),
                    Some(_) if weight.is_some_and(|w| !valid(w)) => {
                        prop_assert!(matches!(r, Err(Error::InvalidWeight { .. })), "{:?}", r);
                    }
                    Some(i) => {
                        prop_assert_eq!(r, Ok(()));
                        let t = &mut model.targets[i].0;
                        if let Some(w) = weight {
                            t.weight = w + 0.0;
                        }
                        if let Some(c) = capacity {
                            t.capacity = c;
                        }
                    }
                }
            }
            Op::Clean(id) => lb.clean(id.as_ref()),
            Op::Wipe => {
                lb.wipe();
                model.targets.clear();
            }
            Op::SetTargets(list) => {
                let r = lb.set_targets(list.clone());
                if let Some(e) = list_error(&list) {
                    // Compared as text: a NaN weight is not equal to itself.
                    prop_assert_eq!(format!("{r:?}"), format!("{:?}", Err::<(), _>(e)));
                } else {
                    prop_assert_eq!(r, Ok(()));
                    let old = std::mem::take(&mut model.targets);
                    for t in list {
                        let t = norm(t);
                        // Kept ids keep their generation (and so their in-flight picks).
                        match old.iter().find(|(o, _)| o.id == t.id) {
                            Some((_, g)) => model.targets.push((t, *g)),
                            None => {
                                let f = model.fresh(t);
                                model.targets.push(f);
                            }
                        }
                    }
                }
            }
        }
        check_state(&lb, &model)?;
    }
    // Dropping the balancer first, then the picks, is fine too.
    drop(lb);
    drop(model);
    Ok(())
}

/// `-0.0` is stored as `0.0`.
fn norm(t: Target) -> Target {
    let w = t.weight + 0.0;
    t.with_weight(w)
}

/// The error a target list must be rejected with: the first bad weight or repeated id, in order.
fn list_error(list: &[Target]) -> Option<Error> {
    list.iter().enumerate().find_map(|(i, t)| {
        if !valid(t.weight) {
            Some(Error::InvalidWeight {
                id: t.id.clone(),
                weight: t.weight,
            })
        } else if list[..i].iter().any(|u| u.id == t.id) {
            Some(Error::DuplicateId { id: t.id.clone() })
        } else {
            None
        }
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_operation_sequences(
        seed in any::<u64>(),
        start in prop::collection::vec(target(), 0..5),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        run(seed, start, ops)?;
    }
}
