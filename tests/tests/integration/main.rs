//! The integration tests against the real control plane and provider servers, as one test binary: one link of
//! the operator and every provider instead of one per area (each debug binary is ~130 MB; eighteen of them
//! filled the CI machine's disk). Run one area with `cargo test -p syncret-tests --test integration <module>::`.
//!
//! Tests of different modules run side by side in this process, as tests of one module always did: each takes
//! its own namespace and an operator of its own controller class, watching that namespace only
//! ([`syncret_tests::operator::Operator`]). A cluster-wide operator is refused here: it would also sync the other
//! tests' ExternalSecrets that no store of its class rules out (generator-only ones). The tests that need one
//! (ClusterExternalSecret, ClusterPushSecret, sharding, the benchmark's smoke run) are the `cluster_wide` binary.
//!
//! Three areas stay binaries of their own because they install a process-wide log subscriber to check that no
//! secret value reaches a log: `provider_webhook`, `reliability` and `reliability_process`.
mod admission;
mod chart;
mod controlplane;
mod crds;
mod generators;
mod generic_target;
mod leader;
mod migration;
mod ops;
mod provider_aws;
mod provider_aws_parameter_store;
mod provider_azure;
mod provider_bitwarden;
mod provider_doppler;
mod provider_gcp;
mod provider_gitlab;
mod provider_infisical;
mod provider_kubernetes;
mod provider_onepassword;
mod provider_sops;
mod provider_vault;
mod provider_vault_cloud_auth;
mod push_secret;
mod rollout;
mod saas;
mod servers;
mod sync_basic;
mod sync_engine;
mod template_watch;
