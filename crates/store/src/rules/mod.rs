//! The rules of the [`Store`](crate::Store) contract that do not depend on an engine, written
//! once: both engines (the embedded SQLite one here, PostgreSQL in `offload-store-pg`) call
//! them, so a rule cannot drift between the two.
//!
//! | module | rule |
//! |---|---|
//! | [`submit`] | what a job must satisfy before it reaches an engine; when an idempotency key answers the first job |
//! | [`retry`] | when a failed attempt runs again: the [`Backoff`](retry::Backoff) curves, their maximum, jitter |
//! | [`state`] | what `cancel`, `retry` and `complete` do in each state |
//! | [`throttle`] | the claim's decisions under rate and concurrency limits: the token bucket, which jobs start |
//! | [`page`] | `list`'s page sizes and its cursor (encoding and decoding) |
//! | [`values`] | conversions between the model's values and the columns' (durations, unsigned numbers, errors as JSON), and the "corrupt row" error |
//! | [`rows`] | the records ([`JobRecord`](crate::JobRecord), [`Claimed`](crate::Claimed), …) decoded from a row **by column name**, through the [`rows::Row`] each engine implements |
//! | [`migrate`] | the migration loop: versions, "too new", one step at a time, the error texts |
//!
//! What stays in an engine is its SQL (in `.sql` files beside its operations) and how it runs
//! it (transactions, batching, locks).

pub mod migrate;
pub mod page;
pub mod retry;
pub mod rows;
pub mod state;
pub mod submit;
pub mod throttle;
pub mod values;
