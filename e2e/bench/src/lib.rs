//! `syncret-bench`: N ExternalSecrets on a real control plane, against the direct-write limit of the same
//! machine and client budget. See `e2e/bench/README.md`.
pub mod apimetrics;
pub mod operator;
pub mod procfs;
pub mod report;
pub mod run;
pub mod track;
pub mod workload;

pub use operator::{Budget, OperatorSpec};
pub use run::{Config, Report, run};
pub use workload::ProviderKind;
