//! Placeholder replaced by the pool benchmark (see bench/peers).
fn main() {}
