//! One module per subcommand.

pub(crate) mod broadcast;
pub(crate) mod cancel;
pub(crate) mod cron;
pub(crate) mod delete;
pub(crate) mod jobs;
pub(crate) mod logs;
pub(crate) mod nodes;
pub(crate) mod pause;
pub(crate) mod result;
pub(crate) mod retry;
pub(crate) mod run;
pub(crate) mod serve;
pub(crate) mod stats;
pub(crate) mod status;
pub(crate) mod submit;
pub(crate) mod workers;
