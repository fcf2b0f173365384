//! The migration loop of every engine: `migrations[i]` takes a database from version `i` to
//! `i + 1`; a released migration is never edited, only followed by a new one.
//!
//! An engine opens its migration transaction (serialized however it must be), wraps it in a
//! [`Migrator`] that reads the version and applies one step, calls [`migrate`], and commits.
//! What is decided here: a database newer than the binary is refused, a current one is left
//! alone, the steps run in order from the version found, and a failing step names both
//! versions.

use std::future::Future;

use crate::StoreError;

/// One migration to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The version it starts from.
    pub from: u32,
    /// The version it brings the database to (`from + 1`); the engine records it.
    pub to: u32,
    /// Its SQL (several statements).
    pub sql: &'static str,
}

/// One engine's migration transaction. The futures of a synchronous engine never wait (it may
/// drive [`migrate`] without a runtime).
pub trait Migrator {
    /// The version the database is at (0 for an empty database).
    fn version(&mut self) -> impl Future<Output = Result<u32, StoreError>>;

    /// Runs `step.sql` and records `step.to` as the database's version. The error's text goes
    /// into the refusal.
    fn apply(&mut self, step: Step) -> impl Future<Output = Result<(), String>>;
}

/// Brings the database behind `m` to version `migrations.len()`. Returns the version found and
/// the one reached (equal when nothing ran); the caller commits.
///
/// # Errors
///
/// [`StoreError::SchemaTooNew`] when the database was written by a newer offload;
/// [`StoreError::Engine`] naming the step when a migration fails (the caller then rolls back:
/// the database is left as it was).
pub async fn migrate<M: Migrator>(
    m: &mut M,
    migrations: &[&'static str],
) -> Result<(u32, u32), StoreError> {
    let latest = u32::try_from(migrations.len()).unwrap_or(u32::MAX);
    let found = m.version().await?;
    if found > latest {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: latest,
        });
    }
    for (from, sql) in (found..).zip(&migrations[found as usize..]) {
        let step = Step {
            from,
            to: from + 1,
            sql,
        };
        m.apply(step).await.map_err(|e| {
            StoreError::Engine(format!(
                "schema migration from version {from} to {} failed: {e}",
                step.to
            ))
        })?;
    }
    if found < latest {
        tracing::info!(from = found, to = latest, "store schema migrated");
    }
    Ok((found, latest))
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    /// A database as a version and the steps applied to it; `fail` makes that step fail.
    struct Fake {
        version: u32,
        applied: Vec<Step>,
        fail: Option<u32>,
    }

    impl Migrator for Fake {
        async fn version(&mut self) -> Result<u32, StoreError> {
            Ok(self.version)
        }

        async fn apply(&mut self, step: Step) -> Result<(), String> {
            if self.fail == Some(step.to) {
                return Err("syntax error".into());
            }
            self.applied.push(step);
            self.version = step.to;
            Ok(())
        }
    }

    fn run(fake: &mut Fake) -> Result<(u32, u32), StoreError> {
        let mut f = pin!(migrate(fake, &["one", "two", "three"]));
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(r) => r,
            Poll::Pending => unreachable!("the fake never waits"),
        }
    }

    fn fake(version: u32, fail: Option<u32>) -> Fake {
        Fake {
            version,
            applied: Vec::new(),
            fail,
        }
    }

    #[test]
    fn steps_run_in_order_from_the_version_found() {
        let mut db = fake(1, None);
        assert_eq!(run(&mut db).unwrap(), (1, 3));
        let sql: Vec<_> = db.applied.iter().map(|s| (s.from, s.to, s.sql)).collect();
        assert_eq!(sql, [(1, 2, "two"), (2, 3, "three")]);
        // Current: nothing runs.
        db.applied.clear();
        assert_eq!(run(&mut db).unwrap(), (3, 3));
        assert!(db.applied.is_empty());
    }

    #[test]
    fn newer_is_refused_and_a_failing_step_is_named() {
        assert!(matches!(
            run(&mut fake(4, None)),
            Err(StoreError::SchemaTooNew {
                found: 4,
                supported: 3
            })
        ));
        let e = run(&mut fake(0, Some(2))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "storage engine error: schema migration from version 1 to 2 failed: syntax error"
        );
    }
}
