//! syncret: keeps Kubernetes Secrets in sync with external secret stores.
#![forbid(unsafe_code)]

pub mod admin;
pub mod cli;
pub mod metrics;
pub mod schedule;
pub mod sync;
pub mod template;
