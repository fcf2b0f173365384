#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod algorithm;
mod balancer;
mod context;
mod error;
mod pick;
mod set;
mod target;

pub use algorithm::Algorithm;
pub use balancer::{LoadBalancer, LoadSample, ParamsUpdate};
pub use context::PickContext;
pub use error::Error;
pub use pick::Pick;
pub use target::{Key, Target, TargetId};
