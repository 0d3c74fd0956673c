//! Reliability and security of the operator in-process against the real control plane and provider servers
//! (`docs/reliability.md`): provider outages and hangs, hostile and malformed specs, namespace isolation. Every
//! test ends with a leak check: the secret values it used must not appear in the operator's debug logs, Events,
//! status conditions or metrics.
#[path = "reliability/mod.rs"]
mod common;
#[path = "reliability/hostile.rs"]
mod hostile;
#[path = "reliability/isolation.rs"]
mod isolation;
#[path = "reliability/outage.rs"]
mod outage;
#[path = "reliability/runtime.rs"]
mod runtime;
#[path = "reliability/tenant.rs"]
mod tenant;
