//! File modes of the data directory: the directory is created `0700`, the database, the lock
//! file and SQLite's `-wal`/`-shm` files are `0600` (SQLite gives its side files the mode of
//! the database file, so creating the database `0600` first is enough).

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::StoreError;

/// Mode of the data directory when offload creates it.
pub(crate) const DIR_MODE: u32 = 0o700;
/// Mode of every file offload creates in it.
pub(crate) const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) `0700`. An existing directory keeps its mode (it may be
/// shared on purpose); a warning says when others can read it.
pub(crate) fn create_dir(dir: &Path) -> Result<(), StoreError> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|e| {
            StoreError::Engine(format!(
                "cannot create the data directory {}: {e}",
                dir.display()
            ))
        })?;
    if let Ok(meta) = dir.metadata() {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                dir = %dir.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "the data directory is readable by other users; `chmod 700` it"
            );
        }
    }
    Ok(())
}

/// Creates `path` `0600` when missing, and narrows it to `0600` when it exists with a wider
/// mode (it is offload's own file), so that SQLite's side files are `0600` too.
pub(crate) fn private_file(path: &Path) -> Result<(), StoreError> {
    let io =
        |e: std::io::Error| StoreError::Engine(format!("cannot create {}: {e}", path.display()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)
        .map_err(io)?;
    let mode = file.metadata().map_err(io)?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(Permissions::from_mode(FILE_MODE))
            .map_err(io)?;
    }
    Ok(())
}
