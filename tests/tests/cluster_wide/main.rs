//! The integration tests whose operators watch every namespace, as a test binary of their own: the
//! ClusterExternalSecret and ClusterPushSecret controllers (which only run cluster-wide), sharded replicas, and
//! the benchmark's smoke run. Run one area with `cargo test -p syncret-tests --test cluster_wide <module>::`.
//!
//! Why apart from `integration`: a cluster-wide operator takes every ExternalSecret that no store of another
//! controller class claims, in every namespace. That is ESO's rule: a store without `spec.controller` is every
//! controller's, and so is an ExternalSecret that reads only from generators. Beside the namespace-scoped tests
//! of `integration` such an operator synced their generator-only ExternalSecrets a second time (a `CreatedOnce`
//! Secret was rewritten with new values by the other operator). Cargo runs test binaries one after another, so
//! these tests never overlap with those; `integration` refuses to start a cluster-wide operator
//! ([`syncret_tests::operator::Operator`], [`syncret_tests::process::SyncretProcess`]).
//!
//! The tests of this binary run side by side: each cluster-wide operator has a controller class of its own
//! (set on every store its test creates, and none of them reads from generators alone), and switches off the
//! cluster-scoped controllers it does not test, so no two operators reconcile the same object.
mod bench_smoke;
mod cluster_external_secret;
mod cluster_push_secret;
mod shard;

/// Tests that measure lease timings or load the machine run one at a time (each starts processes of its own).
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Child mode: the processes the sharding tests spawn run syncret here (see `syncret_tests::process`).
#[test]
#[ignore = "runs syncret when this binary is started as a child process by the sharding tests"]
fn syncret_process() {
    syncret_tests::process::run_child();
}
