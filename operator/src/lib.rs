//! syncret: keeps Kubernetes Secrets in sync with external secret stores.
//!
//! `crds` holds the API types, `providers` the backends; this crate decides and wires: the pure sync core
//! ([`sync`]) over the Go-template engine (the `syncret-template` crate), scheduling ([`schedule`]), the controllers
//! ([`controller`]) around a shared [`context::Context`], metrics and the admin server.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod check;
pub mod cli;
pub mod context;
pub mod controller;
pub mod dependents;
pub mod escache;
pub mod events;
pub mod generate;
pub mod leader;
pub mod manifests;
pub mod metrics;
pub mod push;
pub mod reads;
pub mod render;
pub mod rollout;
pub mod runtime;
pub mod schedule;
pub mod seal;
pub mod secrets;
pub mod shard;
pub mod stores;
pub mod sync;

/// Errors of the operator crate (start-up; reconcile failures become status conditions, not errors).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("metrics registry: {0}")]
    Metrics(#[source] prometheus::Error),
    #[error("binding {0}: {1}")]
    Bind(String, #[source] std::io::Error),
    #[error("kubernetes client: {0}")]
    Kube(#[source] kube::Error),
    #[error("kubeconfig: {0}")]
    Config(String),
}
