#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod algorithm;
mod balancer;
mod context;
mod error;
mod load;
mod pick;
mod set;
mod target;

pub use algorithm::Algorithm;
pub use balancer::LoadBalancer;
pub use context::PickContext;
pub use error::Error;
pub use load::{LoadSample, ParamsUpdate};
pub use pick::Pick;
pub use target::{Key, Target, TargetId};
