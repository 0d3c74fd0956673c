//! syncret: keeps Kubernetes Secrets in sync with external secret stores.
#![forbid(unsafe_code)]

pub mod cli;
pub mod template;
