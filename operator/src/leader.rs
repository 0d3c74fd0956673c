//! Leader election on a `coordination.k8s.io/v1` Lease, following client-go's protocol (and ESO's flags
//! `--leader-election-{id,lease-duration,renew-deadline,retry-period}`), so that of several replicas only one
//! writes.
//!
//! - Every replica runs its watches (warm caches, fast takeover); only the leader runs workers.
//! - A candidate takes the Lease when it is free (no holder: released on graceful shutdown), or when it has
//!   seen the Lease **unchanged for the lease duration** on its own monotonic clock. Timestamps written by
//!   other replicas are never compared with the local clock, so clock skew cannot cause two leaders.
//! - Updates carry the resourceVersion they were computed from: of two candidates racing for a Lease, one
//!   gets a 409 Conflict and stays a candidate.
//! - The leader renews every retry period. If it has not renewed successfully within the **renew deadline**
//!   (measured from when the last successful renewal was *sent*), it stops leading ([`State::Lost`]): the
//!   operator stops its workers and the process exits, like controller-runtime. Because the renew deadline is
//!   shorter than the lease duration, it has stopped before any other replica can take over.
//! - On graceful shutdown the leader keeps renewing until its in-flight work has finished, then releases the
//!   Lease (empty holder), so the next leader starts at once instead of after the lease duration.
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use prometheus::IntGauge;
use rand::Rng;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long a leader that is shutting down keeps renewing while waiting for its work to stop; after that it
/// stops renewing and lets the Lease expire (never releases it with work possibly still in flight).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Parameters of the election (ESO's defaults: 15s / 10s / 2s).
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease (`--leader-election-id`).
    pub name: String,
    /// This replica's identity (unique per process).
    pub identity: String,
    /// How long a candidate waits, after last seeing the Lease change, before taking it.
    pub lease_duration: Duration,
    /// How long the leader keeps leading without a successful renewal.
    pub renew_deadline: Duration,
    /// Pause between attempts to acquire or renew.
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// client-go's checks: lease duration > renew deadline > retry period > 0.
    pub fn validate(&self) -> Result<(), String> {
        if self.retry_period.is_zero() {
            return Err("leader election: the retry period must be positive".into());
        }
        if self.renew_deadline <= self.retry_period {
            return Err("leader election: the renew deadline must be longer than the retry period".into());
        }
        if self.lease_duration <= self.renew_deadline {
            return Err("leader election: the lease duration must be longer than the renew deadline".into());
        }
        if self.name.is_empty() || self.namespace.is_empty() || self.identity.is_empty() {
            return Err("leader election: the lease name, namespace and identity must not be empty".into());
        }
        Ok(())
    }
}

/// An identity unique to this process: `<pod name or host name>_<random>` (client-go uses host name + UUID).
pub fn default_identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "syncret".into());
    format!("{host}_{:016x}", rand::rng().random::<u64>())
}

/// Where this replica stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Waiting for the Lease.
    Candidate,
    /// Holding the Lease: workers may run.
    Leading,
    /// Was leading and could not renew in time (or someone else took the Lease): stop writing now.
    Lost,
    /// Stopped before ever leading (shutdown), or released the Lease after a graceful shutdown.
    Stopped,
}

/// A view of the election, cheap to clone. Without leader election it is always [`State::Leading`].
#[derive(Clone)]
pub struct Leadership {
    rx: watch::Receiver<State>,
}

impl Leadership {
    /// Leadership without an election (a single replica).
    pub fn always() -> Self {
        let (_tx, rx) = watch::channel(State::Leading);
        Self { rx }
    }

    pub fn state(&self) -> State {
        *self.rx.borrow()
    }

    pub fn is_leading(&self) -> bool {
        self.state() == State::Leading
    }

    /// Waits until this replica leads (`true`), or will not lead (lost, stopped, or `stop` fired: `false`).
    pub async fn acquired(&self, stop: &CancellationToken) -> bool {
        let mut rx = self.rx.clone();
        tokio::select! {
            s = rx.wait_for(|s| *s != State::Candidate) => matches!(s.as_deref(), Ok(State::Leading)),
            _ = stop.cancelled() => false,
        }
    }

    /// Resolves when leadership is lost (never, without an election or after a graceful release).
    pub async fn lost(&self) {
        let mut rx = self.rx.clone();
        if rx.wait_for(|s| *s == State::Lost).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// What to do with the Lease as it is now (pure; see the module docs).
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// No Lease: create it.
    Create,
    /// Free or expired: take it.
    Acquire,
    /// Ours: renew it.
    Renew,
    /// Held by someone else whose lease has not expired.
    Wait { holder: String },
}

/// Decides from the Lease spec, this replica's identity and how long the Lease has been seen unchanged.
pub fn decide(identity: &str, spec: Option<&LeaseSpec>, unchanged_for: Duration, lease_duration: Duration) -> Decision {
    let Some(spec) = spec else {
        return Decision::Create;
    };
    match spec.holder_identity.as_deref().unwrap_or("") {
        "" => Decision::Acquire,
        h if h == identity => Decision::Renew,
        _ if unchanged_for >= lease_duration => Decision::Acquire,
        h => Decision::Wait { holder: h.to_string() },
    }
}

/// The spec this replica writes to take or renew the Lease.
pub fn claim(identity: &str, previous: Option<&LeaseSpec>, lease_duration: Duration, now: MicroTime) -> LeaseSpec {
    let prev = previous.cloned().unwrap_or_default();
    let same_holder = prev.holder_identity.as_deref() == Some(identity);
    LeaseSpec {
        holder_identity: Some(identity.to_string()),
        lease_duration_seconds: Some(seconds(lease_duration)),
        acquire_time: if same_holder {
            prev.acquire_time.clone().or_else(|| Some(now.clone()))
        } else {
            Some(now.clone())
        },
        renew_time: Some(now),
        lease_transitions: Some(
            prev.lease_transitions.unwrap_or(0) + if same_holder || previous.is_none() { 0 } else { 1 },
        ),
        ..prev
    }
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_millis().div_ceil(1000)).unwrap_or(i32::MAX).max(1)
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// Outcome of one attempt.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Held,
    HeldBy(String),
    /// Lost a race (409) or the Lease vanished under us; try again next period.
    Raced,
}

struct Elector {
    api: Api<Lease>,
    cfg: LeaseConfig,
    /// resourceVersion of the Lease as last seen, and when it was first seen (monotonic clock).
    observed: Option<(String, Instant)>,
}

impl Elector {
    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, kube::Error> {
        let current = self.api.get_opt(&self.cfg.name).await?;
        let unchanged_for = match &current {
            Some(lease) => {
                let rv = lease.metadata.resource_version.clone().unwrap_or_default();
                match &self.observed {
                    Some((seen, at)) if *seen == rv => at.elapsed(),
                    _ => {
                        self.observed = Some((rv, Instant::now()));
                        Duration::ZERO
                    }
                }
            }
            None => Duration::ZERO,
        };
        let spec = current.as_ref().and_then(|l| l.spec.as_ref());
        let decision = decide(&self.cfg.identity, spec, unchanged_for, self.cfg.lease_duration);
        let desired = claim(&self.cfg.identity, spec, self.cfg.lease_duration, now());
        let result = match (decision, current) {
            (Decision::Wait { holder }, _) => return Ok(Attempt::HeldBy(holder)),
            (Decision::Create, _) | (_, None) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.cfg.name.clone()),
                        namespace: Some(self.cfg.namespace.clone()),
                        ..Default::default()
                    },
                    spec: Some(desired),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            (Decision::Acquire | Decision::Renew, Some(mut lease)) => {
                // Keeps metadata.resourceVersion: the update fails with 409 if the Lease changed meanwhile.
                lease.metadata.managed_fields = None;
                lease.spec = Some(desired);
                self.api.replace(&self.cfg.name, &PostParams::default(), &lease).await
            }
        };
        match result {
            Ok(lease) => {
                self.observed = lease.metadata.resource_version.map(|rv| (rv, Instant::now()));
                Ok(Attempt::Held)
            }
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => Ok(Attempt::Raced),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up if we still hold it (empty holder, 1s duration: the next candidate takes it at once).
    async fn release(&mut self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.cfg.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.cfg.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now());
        lease.metadata.managed_fields = None;
        self.api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
    }
}

/// A running election: [`ElectionHandle::release`] gives the Lease up once the caller's work has stopped.
pub struct ElectionHandle {
    release: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl ElectionHandle {
    /// Releases the Lease if held (call after every write has finished) and waits for the election to end.
    pub async fn release(self) {
        self.release.cancel();
        let _ = self.task.await;
    }
}

/// Starts campaigning for the Lease. `shutdown` stops a candidate; a leader keeps renewing after it until
/// [`ElectionHandle::release`] (or [`SHUTDOWN_GRACE`]). `status` is `leader_election_master_status`.
pub fn start(
    client: kube::Client,
    cfg: LeaseConfig,
    status: IntGauge,
    shutdown: CancellationToken,
) -> (Leadership, ElectionHandle) {
    let (tx, rx) = watch::channel(State::Candidate);
    let release = CancellationToken::new();
    let elector = Elector {
        api: Api::namespaced(client, &cfg.namespace),
        cfg,
        observed: None,
    };
    status.set(0);
    let task = tokio::spawn(run(elector, tx, status, shutdown, release.clone()));
    (Leadership { rx }, ElectionHandle { release, task })
}

async fn run(
    mut el: Elector,
    tx: watch::Sender<State>,
    status: IntGauge,
    shutdown: CancellationToken,
    release: CancellationToken,
) {
    let cfg = el.cfg.clone();
    let lease = format!("{}/{}", cfg.namespace, cfg.name);
    tracing::info!(%lease, identity = %cfg.identity, "leader election: waiting for the lease");
    // Candidate.
    let mut waiting_for = String::new();
    let mut last_renew = loop {
        if shutdown.is_cancelled() || release.is_cancelled() {
            let _ = tx.send(State::Stopped);
            return;
        }
        let sent = Instant::now();
        match el.try_acquire_or_renew().await {
            Ok(Attempt::Held) => break sent,
            Ok(Attempt::HeldBy(holder)) if holder != waiting_for => {
                tracing::info!(%lease, %holder, "leader election: lease held by another replica");
                waiting_for = holder;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(%lease, error = %e, "leader election: could not read or take the lease"),
        }
        // client-go's jitter (up to 1.2x) keeps candidates from polling in lockstep.
        let pause = cfg.retry_period.mul_f64(1.0 + 0.2 * rand::rng().random::<f64>());
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.cancelled() => {}
            _ = release.cancelled() => {}
        }
    };
    tracing::info!(%lease, identity = %cfg.identity, "leader election: acquired the lease, starting workers");
    status.set(1);
    let _ = tx.send(State::Leading);

    // Leader.
    let mut shutdown_since: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(cfg.retry_period) => {}
            _ = release.cancelled() => {
                status.set(0);
                match el.release().await {
                    Ok(()) => tracing::info!(%lease, "leader election: released the lease"),
                    Err(e) => tracing::warn!(%lease, error = %e, "leader election: could not release the lease; it expires by itself"),
                }
                let _ = tx.send(State::Stopped);
                return;
            }
        }
        if shutdown.is_cancelled() {
            let since = *shutdown_since.get_or_insert_with(Instant::now);
            if since.elapsed() > SHUTDOWN_GRACE {
                tracing::warn!(%lease, "leader election: work did not stop in time; letting the lease expire");
                break;
            }
        }
        let sent = Instant::now();
        let left = cfg.renew_deadline.saturating_sub(sent.duration_since(last_renew));
        match tokio::time::timeout(left, el.try_acquire_or_renew()).await {
            Ok(Ok(Attempt::Held)) => last_renew = sent,
            Ok(Ok(Attempt::HeldBy(holder))) => {
                tracing::error!(%lease, %holder, "leader election: another replica holds the lease");
                break;
            }
            Ok(Ok(Attempt::Raced)) => tracing::warn!(%lease, "leader election: renewal conflicted"),
            Ok(Err(e)) => tracing::warn!(%lease, error = %e, "leader election: could not renew the lease"),
            Err(_) => tracing::warn!(%lease, "leader election: renewal timed out"),
        }
        if last_renew.elapsed() >= cfg.renew_deadline {
            tracing::error!(%lease, deadline = ?cfg.renew_deadline, "leader election: could not renew within the renew deadline");
            break;
        }
    }
    status.set(0);
    let _ = tx.send(State::Lost);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(h: &str) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(h.into()),
            lease_transitions: Some(3),
            acquire_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
            ..Default::default()
        }
    }

    const D: Duration = Duration::from_secs(15);

    #[test]
    fn decisions() {
        assert_eq!(decide("a", None, Duration::ZERO, D), Decision::Create);
        assert_eq!(
            decide("a", Some(&LeaseSpec::default()), Duration::ZERO, D),
            Decision::Acquire
        );
        assert_eq!(decide("a", Some(&held_by("")), Duration::ZERO, D), Decision::Acquire);
        assert_eq!(decide("a", Some(&held_by("a")), Duration::ZERO, D), Decision::Renew);
        assert_eq!(decide("a", Some(&held_by("a")), D * 10, D), Decision::Renew);
        assert_eq!(
            decide("a", Some(&held_by("b")), D - Duration::from_millis(1), D),
            Decision::Wait { holder: "b".into() }
        );
        assert_eq!(decide("a", Some(&held_by("b")), D, D), Decision::Acquire);
    }

    #[test]
    fn claims_count_transitions_and_keep_acquire_time_on_renewal() {
        let t = now();
        let renewed = claim("a", Some(&held_by("a")), D, t.clone());
        assert_eq!(renewed.lease_transitions, Some(3));
        assert_eq!(renewed.acquire_time, held_by("a").acquire_time);
        assert_eq!(renewed.renew_time, Some(t.clone()));
        assert_eq!(renewed.lease_duration_seconds, Some(15));
        let taken = claim("a", Some(&held_by("b")), D, t.clone());
        assert_eq!(taken.holder_identity.as_deref(), Some("a"));
        assert_eq!(taken.lease_transitions, Some(4));
        assert_eq!(taken.acquire_time, Some(t.clone()));
        let created = claim("a", None, Duration::from_millis(1500), t);
        assert_eq!(created.lease_transitions, Some(0));
        assert_eq!(created.lease_duration_seconds, Some(2));
    }

    #[test]
    fn config_checks_match_client_go() {
        let mut c = LeaseConfig {
            namespace: "ns".into(),
            name: "l".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        };
        assert!(c.validate().is_ok());
        c.renew_deadline = c.lease_duration;
        assert!(c.validate().is_err());
        c.renew_deadline = Duration::from_secs(2);
        assert!(c.validate().is_err());
        assert_ne!(default_identity(), default_identity());
    }

    #[tokio::test]
    async fn always_leads_without_election() {
        let l = Leadership::always();
        assert!(l.is_leading());
        assert!(l.acquired(&CancellationToken::new()).await);
        let lost = tokio::time::timeout(Duration::from_millis(50), l.lost()).await;
        assert!(lost.is_err(), "never lost");
    }
}
