//! Sharded active-active replicas on Kubernetes Leases (`--shards`).
//!
//! Namespaces are split into `--shards` shards by a stable hash of their name ([`shard_of`]); the cluster-wide
//! duties (store validation, ClusterExternalSecrets, ClusterPushSecrets) are one more unit, [`Unit::Cluster`].
//! Each unit has a Lease; every replica also keeps a membership Lease of its own. Every replica lists the Leases
//! each retry period, computes the same balanced placement of units over the live members ([`assign`]), takes
//! the free units placed on it, renews the ones it holds and gives back the ones placed elsewhere
//! ([`coordinator`]). The number of replicas is discovered from the membership Leases, never configured.
//!
//! [`Ownership`] is what the rest of the operator asks: does this replica hold the unit of a namespace now
//! (watches keep only those objects, workers take only those keys), and a [`Tenure`] per reconcile that
//! ends when the unit is given up or its fence closes. Fencing: a unit may be written only until the renew
//! deadline after the last renewal was *sent*; others take it only after seeing its Lease unchanged for the
//! (longer) lease duration on their own clocks, so a replica has stopped writing before its Lease can be
//! taken. Every mutating request goes through [`fence`], which refuses it when the unit is not held at that
//! moment, whatever code path sent it.
//!
//! Without `--shards` the operator is one unit that is always held ([`Ownership::unsharded`]); leader election
//! (`--enable-leader-election`) then decides whether workers run at all, as before.
pub mod assign;
pub mod coordinator;
pub mod fence;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use assign::shard_of;

/// The most shards `--shards` accepts (one Lease each, renewed every retry period by its holder).
pub const MAX_SHARDS: u32 = 256;

/// A unit of ownership.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unit {
    /// The namespaces whose [`shard_of`] is this number: their ExternalSecrets and PushSecrets.
    Shard(u32),
    /// Store validation and the cluster-scoped controllers (ClusterExternalSecret, ClusterPushSecret).
    Cluster,
}

impl Unit {
    /// The `shard` label of metrics: the number, or `cluster`.
    pub fn label(self) -> String {
        match self {
            Unit::Shard(i) => i.to_string(),
            Unit::Cluster => "cluster".into(),
        }
    }
}

impl std::fmt::Display for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unit::Shard(i) => write!(f, "shard {i}"),
            Unit::Cluster => f.write_str("the cluster unit"),
        }
    }
}

/// One unit this replica holds.
struct Held {
    /// The Lease's `leaseTransitions` when this replica took it: a new value on every change of holder.
    epoch: u64,
    /// Writes are allowed until then: the renew deadline after the last successful renewal was sent.
    valid_until: Instant,
    /// Cancelled when the unit is given up or lost: in-flight reconciles of it stop.
    token: CancellationToken,
}

/// What this replica holds (see the module docs). Shared by the coordinator (which grants and revokes), the
/// watches (which keep only held units' objects), the workers ([`Ownership::tenure`]) and the fence.
pub struct Ownership {
    /// 0: not sharded (everything is held, always).
    shards: u32,
    /// Per unit (shards, then the cluster unit).
    slots: Mutex<Vec<Option<Held>>>,
    /// Reconciles in flight per unit (a unit is released only after they stopped).
    in_flight: Vec<AtomicUsize>,
    /// The held units, each with the number of its grant (a unit lost and taken again between two looks of a
    /// follower shows as a new number: what was cached of it meanwhile is stale).
    held: watch::Sender<BTreeMap<Unit, u64>>,
    grants: std::sync::atomic::AtomicU64,
}

impl Ownership {
    /// Not sharded: one replica (or the leader) does everything.
    pub fn unsharded() -> Self {
        Self::with_shards(0)
    }

    /// `shards` namespace shards plus the cluster unit, none held yet.
    pub fn sharded(shards: u32) -> Self {
        Self::with_shards(shards.clamp(1, MAX_SHARDS))
    }

    fn with_shards(shards: u32) -> Self {
        let units = shards as usize + 1;
        Self {
            shards,
            slots: Mutex::new((0..units).map(|_| None).collect()),
            in_flight: (0..units).map(|_| AtomicUsize::new(0)).collect(),
            held: watch::channel(BTreeMap::new()).0,
            grants: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Whether work is split among replicas.
    pub fn is_sharded(&self) -> bool {
        self.shards > 0
    }

    /// The number of namespace shards (0: not sharded).
    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// Every unit: the shards, then the cluster unit.
    pub fn units(&self) -> impl Iterator<Item = Unit> + use<> {
        (0..self.shards).map(Unit::Shard).chain(std::iter::once(Unit::Cluster))
    }

    /// The unit of a namespace's objects (the cluster unit for cluster-scoped ones, namespace "").
    pub fn unit_of(&self, namespace: &str) -> Unit {
        if namespace.is_empty() || !self.is_sharded() {
            Unit::Cluster
        } else {
            Unit::Shard(shard_of(namespace, self.shards))
        }
    }

    fn index(&self, unit: Unit) -> usize {
        match unit {
            Unit::Shard(i) if i < self.shards => i as usize,
            _ => self.shards as usize,
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Vec<Option<Held>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this replica holds `unit` and may write for it now.
    pub fn holds(&self, unit: Unit) -> bool {
        self.check(unit).is_ok()
    }

    /// Whether this replica holds `unit`, its fence open or not (a late renewal does not give it up).
    pub fn assigned(&self, unit: Unit) -> bool {
        !self.is_sharded() || self.slots().get(self.index(unit)).is_some_and(Option::is_some)
    }

    /// Whether the watches keep objects of `namespace` (its unit is held; the fence is not looked at, so a
    /// unit renewed late does not drop its cache).
    pub fn accepts(&self, namespace: &str) -> bool {
        if !self.is_sharded() {
            return true;
        }
        let i = self.index(self.unit_of(namespace));
        self.slots().get(i).is_some_and(Option::is_some)
    }

    /// The epoch of `unit` if it may be written now, else why not.
    pub fn check(&self, unit: Unit) -> Result<u64, fence::Fenced> {
        if !self.is_sharded() {
            return Ok(0);
        }
        let slots = self.slots();
        match slots.get(self.index(unit)).and_then(Option::as_ref) {
            None => Err(fence::Fenced::NotHeld(unit)),
            Some(h) if Instant::now() >= h.valid_until => Err(fence::Fenced::Expired(unit)),
            Some(h) => Ok(h.epoch),
        }
    }

    /// A tenure for one reconcile of `unit`: `None` when this replica does not hold it (the key is dropped; the
    /// unit's holder has it). The tenure's [`Tenure::lost`] resolves when the unit is given up or its fence
    /// closes.
    pub fn tenure(self: &std::sync::Arc<Self>, unit: Unit) -> Option<Tenure> {
        if !self.is_sharded() {
            return Some(Tenure {
                unit,
                epoch: 0,
                token: CancellationToken::new(),
                own: None,
            });
        }
        let i = self.index(unit);
        let slots = self.slots();
        let h = slots.get(i)?.as_ref()?;
        if Instant::now() >= h.valid_until {
            return None;
        }
        self.in_flight[i].fetch_add(1, Ordering::SeqCst);
        Some(Tenure {
            unit,
            epoch: h.epoch,
            token: h.token.clone(),
            own: Some(self.clone()),
        })
    }

    /// Until when `unit` may be written in `epoch` (`None`: not held in that epoch).
    fn valid_until(&self, unit: Unit, epoch: u64) -> Option<Instant> {
        let slots = self.slots();
        let h = slots.get(self.index(unit))?.as_ref()?;
        (h.epoch == epoch).then_some(h.valid_until)
    }

    /// The units held, as a snapshot.
    pub fn held(&self) -> BTreeSet<Unit> {
        self.held.borrow().keys().copied().collect()
    }

    /// Follows the held units and the number of each one's grant (a new value on every grant and revoke).
    pub fn subscribe(&self) -> watch::Receiver<BTreeMap<Unit, u64>> {
        self.held.subscribe()
    }

    /// Reconciles of `unit` in flight.
    pub fn in_flight(&self, unit: Unit) -> usize {
        self.in_flight[self.index(unit)].load(Ordering::SeqCst)
    }

    /// The coordinator took `unit` in `epoch`; writes are allowed until `valid_until`.
    pub(crate) fn grant(&self, unit: Unit, epoch: u64, valid_until: Instant) {
        let i = self.index(unit);
        {
            let mut slots = self.slots();
            if let Some(old) = slots[i].replace(Held {
                epoch,
                valid_until,
                token: CancellationToken::new(),
            }) {
                old.token.cancel();
            }
        }
        let grant = self.grants.fetch_add(1, Ordering::SeqCst);
        self.held.send_modify(|s| {
            s.insert(unit, grant);
        });
    }

    /// The coordinator renewed `unit`: writes are allowed until `valid_until`.
    pub(crate) fn extend(&self, unit: Unit, valid_until: Instant) {
        let i = self.index(unit);
        if let Some(h) = self.slots()[i].as_mut() {
            h.valid_until = h.valid_until.max(valid_until);
        }
    }

    /// `unit` is given up or lost: its in-flight reconciles stop, its keys are no longer taken.
    pub(crate) fn revoke(&self, unit: Unit) -> bool {
        let i = self.index(unit);
        let old = self.slots()[i].take();
        let had = old.is_some();
        if let Some(h) = old {
            h.token.cancel();
            self.held.send_modify(|s| {
                s.remove(&unit);
            });
        }
        had
    }
}

/// This replica's hold on one unit for the duration of one reconcile (see [`Ownership::tenure`]).
pub struct Tenure {
    pub unit: Unit,
    /// The unit's epoch when the reconcile started.
    pub epoch: u64,
    token: CancellationToken,
    own: Option<std::sync::Arc<Ownership>>,
}

impl Tenure {
    /// Resolves when the unit is given up, lost, or its fence closes (the renew deadline passed without a
    /// renewal); never without sharding.
    pub async fn lost(&self) {
        let Some(own) = &self.own else {
            return self.token.cancelled().await;
        };
        loop {
            let Some(until) = own.valid_until(self.unit, self.epoch) else {
                return;
            };
            if Instant::now() >= until {
                return;
            }
            tokio::select! {
                _ = self.token.cancelled() => return,
                _ = tokio::time::sleep_until(until.into()) => {}
            }
        }
    }
}

impl Drop for Tenure {
    fn drop(&mut self) {
        if let Some(own) = &self.own {
            let i = own.index(self.unit);
            let _ = own.in_flight[i].fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn unsharded_holds_everything() {
        let o = Arc::new(Ownership::unsharded());
        assert!(!o.is_sharded());
        assert!(o.accepts("any"));
        assert!(o.holds(Unit::Shard(7)));
        assert_eq!(o.unit_of("ns"), Unit::Cluster);
        assert!(o.tenure(Unit::Cluster).is_some());
        assert_eq!(o.units().collect::<Vec<_>>(), vec![Unit::Cluster]);
    }

    #[tokio::test]
    async fn a_unit_is_writable_until_its_fence_closes_or_it_is_revoked() {
        let o = Arc::new(Ownership::sharded(4));
        let ns = "team-a";
        let unit = o.unit_of(ns);
        assert!(matches!(unit, Unit::Shard(_)));
        assert_eq!(o.units().count(), 5);
        assert!(!o.accepts(ns));
        assert!(o.tenure(unit).is_none(), "not held: the key is dropped");
        assert!(matches!(o.check(unit), Err(fence::Fenced::NotHeld(_))));

        let changes = o.subscribe();
        o.grant(unit, 3, Instant::now() + Duration::from_millis(80));
        assert!(changes.has_changed().unwrap_or(false));
        assert_eq!(o.held(), BTreeSet::from([unit]));
        assert!(o.accepts(ns));
        assert_eq!(o.check(unit).ok(), Some(3));
        let t = o.tenure(unit).expect("held");
        assert_eq!(o.in_flight(unit), 1);
        // Renewed once, then not again: the fence closes at the renew deadline by itself.
        o.extend(unit, Instant::now() + Duration::from_millis(150));
        let started = Instant::now();
        t.lost().await;
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(o.check(unit), Err(fence::Fenced::Expired(_))));
        assert!(o.accepts(ns), "the cache stays until the unit is revoked");
        assert!(o.assigned(unit), "held, fence closed: its keys wait");
        assert!(o.tenure(unit).is_none(), "no new reconcile past the fence");
        drop(t);
        assert_eq!(o.in_flight(unit), 0);

        // Taken again (new epoch), then revoked: a tenure of the new epoch ends at once.
        o.grant(unit, 4, Instant::now() + Duration::from_secs(60));
        let t = o.tenure(unit).expect("held");
        assert_eq!(t.epoch, 4);
        assert!(o.revoke(unit));
        tokio::time::timeout(Duration::from_secs(1), t.lost())
            .await
            .expect("revocation ends the tenure");
        assert!(!o.revoke(unit));
        assert!(!o.accepts(ns));
        assert!(!o.assigned(unit), "given up: its keys are forgotten");
        assert!(o.held().is_empty());
    }

    #[tokio::test]
    async fn a_tenure_of_an_old_epoch_is_lost_when_the_unit_changes_hands_and_comes_back() {
        let o = Arc::new(Ownership::sharded(2));
        o.grant(Unit::Cluster, 1, Instant::now() + Duration::from_secs(60));
        let old = o.tenure(Unit::Cluster).expect("held");
        // Re-granted in a new epoch without a revoke in between (lost and re-acquired between two looks).
        o.grant(Unit::Cluster, 2, Instant::now() + Duration::from_secs(60));
        tokio::time::timeout(Duration::from_secs(1), old.lost())
            .await
            .expect("the old epoch's reconcile stops");
    }
}
