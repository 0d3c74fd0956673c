//! The coordinator: one task per replica that keeps its membership Lease, takes the units placed on it, renews
//! them, and gives back the ones placed elsewhere. Leases, in the `--leader-election-namespace`:
//!
//! - `<id>`: the cluster unit. Its name is the leader-election Lease's, so a replica running without `--shards`
//!   (leader mode, e.g. the old pod of a rolling update to sharding) that holds it keeps every sharded replica
//!   off until it releases it; nothing is ever written by both.
//! - `<id>-shard-<i>`: shard `i`, `i` in `0..--shards`.
//! - `<id>-member-<hash of identity>`: one per replica, renewed every retry period, deleted on shutdown.
//!
//! Every retry period the coordinator lists the Leases of the namespace (one request), renews its membership,
//! and decides per unit with [`step`] (pure): a member is live while its Lease keeps changing (seen unchanged for
//! the lease duration, on this replica's monotonic clock, it is dead); units are placed over the live members by
//! [`super::assign::assign`]; a unit placed here is taken when its Lease is free or has been seen unchanged for
//! the lease duration (client-go's rule, [`crate::leader::decide`]), renewed while held, and given back —
//! in-flight reconciles stopped first, then the Lease released with an empty holder so its new owner takes it at
//! its next look — once placed elsewhere. A replica whose membership Lease was not yet in the list (its first
//! look) takes nothing: replicas started together see each other at their second look and split the units from
//! the start, instead of each taking what a placement over itself alone gives it. A unit that could not be
//! renewed within the renew deadline is dropped at once ([`super::Ownership`]'s fence closes by itself at that
//! moment).
//!
//! Every unit and member Lease carries `syncret.dev/shards: <n>`: a replica takes nothing while a Lease held by
//! a replica with another `--shards` is live (a rolling update that changes the count waits for the old
//! replicas), and of two such replicas holding units at once the one with fewer shards gives everything up.
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::assign::{assign, fnv1a};
use super::{Ownership, Unit};
use crate::leader::{self, Decision, LeaseConfig};
use crate::metrics::Metrics;

/// Annotation with the `--shards` of the replica that wrote a Lease.
pub const ANNOTATION_SHARDS: &str = "syncret.dev/shards";

/// How long a unit being given back waits for its in-flight reconciles (they were cancelled; this is the time
/// for their futures to be dropped).
const DRAIN: Duration = Duration::from_secs(2);

/// What the coordinator needs to know.
#[derive(Clone, Debug)]
pub struct ShardConfig {
    /// Lease namespace, name (`<id>`), this replica's identity and the timings (`--leader-election-*`).
    pub lease: LeaseConfig,
    /// `--shards`.
    pub shards: u32,
}

/// The start-up checks of sharding's configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("sharding: {0}")]
    Lease(String),
    #[error("sharding: --shards must be between 1 and {max}, got {0}", max = super::MAX_SHARDS)]
    Shards(u32),
    #[error("sharding: the lease name {0:?} is too long for the names derived from it (at most 200 characters)")]
    Name(String),
}

impl ShardConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.lease.validate().map_err(ConfigError::Lease)?;
        if self.shards == 0 || self.shards > super::MAX_SHARDS {
            return Err(ConfigError::Shards(self.shards));
        }
        if self.lease.name.len() > 200 {
            return Err(ConfigError::Name(self.lease.name.clone()));
        }
        Ok(())
    }

    /// The Lease of a unit.
    pub fn unit_lease(&self, unit: Unit) -> String {
        match unit {
            Unit::Shard(i) => format!("{}-shard-{i}", self.lease.name),
            Unit::Cluster => self.lease.name.clone(),
        }
    }

    /// The membership Lease of a replica.
    pub fn member_lease(&self, identity: &str) -> String {
        format!("{}-member-{:016x}", self.lease.name, fnv1a(&[identity.as_bytes()]))
    }

    fn member_prefix(&self) -> String {
        format!("{}-member-", self.lease.name)
    }

    /// The unit a Lease name stands for.
    fn unit_of_lease(&self, name: &str) -> Option<Unit> {
        if name == self.lease.name {
            return Some(Unit::Cluster);
        }
        let i: u32 = name
            .strip_prefix(&self.lease.name)?
            .strip_prefix("-shard-")?
            .parse()
            .ok()?;
        (i < self.shards).then_some(Unit::Shard(i))
    }
}

/// One Lease as this replica sees it now.
#[derive(Clone, Debug)]
pub struct Observed {
    pub lease: Lease,
    /// How long its resourceVersion has been the same, on this replica's clock.
    pub unchanged_for: Duration,
}

impl Observed {
    fn spec(&self) -> Option<&LeaseSpec> {
        self.lease.spec.as_ref()
    }

    /// The holder, "" when free.
    pub fn holder(&self) -> &str {
        self.spec().and_then(|s| s.holder_identity.as_deref()).unwrap_or("")
    }

    /// Whether a holder keeps renewing it (held and not yet seen unchanged for the lease duration).
    pub fn live(&self, lease_duration: Duration) -> bool {
        !self.holder().is_empty() && self.unchanged_for < lease_duration
    }

    /// The `--shards` of whoever wrote it (none: a replica without sharding).
    pub fn shards(&self) -> Option<u32> {
        self.lease
            .metadata
            .annotations
            .as_ref()?
            .get(ANNOTATION_SHARDS)?
            .parse()
            .ok()
    }
}

/// What to do with one unit this tick.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Not ours and not placed here.
    Nothing,
    /// Placed here, held by someone else who still renews it.
    Wait,
    /// Placed here and free (or expired, or missing): take it.
    Take,
    /// Ours and placed here: renew it.
    Renew,
    /// Ours but placed elsewhere (or we must stand back): stop its work, then release it.
    Give,
    /// We thought we held it, and the Lease names someone else: stop at once, nothing to release.
    Lost,
}

/// Decides one unit (pure).
pub fn step(me: &str, holding: bool, placed_here: bool, lease: Option<&Observed>, lease_duration: Duration) -> Step {
    let holder = lease.map(Observed::holder).unwrap_or("");
    if holding && !holder.is_empty() && holder != me {
        return Step::Lost;
    }
    match (holding, placed_here) {
        (true, true) => Step::Renew,
        (true, false) => Step::Give,
        (false, false) => Step::Nothing,
        (false, true) => {
            let unchanged = lease.map(|l| l.unchanged_for).unwrap_or_default();
            match leader::decide(me, lease.and_then(Observed::spec), unchanged, lease_duration) {
                Decision::Wait { .. } => Step::Wait,
                Decision::Create | Decision::Acquire | Decision::Renew => Step::Take,
            }
        }
    }
}

/// Everything the Leases say, for one tick (pure input of [`plan`]).
pub struct World<'a> {
    pub me: &'a str,
    pub shards: u32,
    pub lease_duration: Duration,
    /// Membership Leases.
    pub members: Vec<&'a Observed>,
    /// Unit Leases by unit (missing: never created).
    pub units: &'a BTreeMap<Unit, Observed>,
    /// Whether this replica's membership Lease was written this tick.
    pub member: bool,
    /// This replica's membership Lease was not in this tick's list (it is new, or was gone): replicas that
    /// started at the same moment have not seen each other yet, so nothing is taken until the next look (else
    /// each takes what its one-member placement gives it, primes it, and gives most of it back a tick later).
    pub joining: bool,
    /// Units this replica holds.
    pub holding: &'a dyn Fn(Unit) -> bool,
    /// Shutting down: take nothing new.
    pub stopping: bool,
}

/// The decision of one tick: a step per unit, the live members placement was made over, and why this replica
/// stands back, if it does.
#[derive(Debug)]
pub struct Plan {
    pub steps: Vec<(Unit, Step)>,
    pub members: Vec<String>,
    pub standing_back: Option<String>,
}

/// Decides every unit for one tick (pure; see the module docs).
pub fn plan(w: &World<'_>, units: impl Iterator<Item = Unit>) -> Plan {
    let d = w.lease_duration;
    let mut standing_back = None;
    // A replica in leader mode (not a member, no shard count) holds the cluster Lease: everything waits for it.
    if let Some(c) = w.units.get(&Unit::Cluster)
        && c.live(d)
        && c.holder() != w.me
        && c.shards().is_none()
    {
        standing_back = Some(format!(
            "the lease is held by {} in leader mode (no --shards)",
            c.holder()
        ));
    }
    // Units held by replicas with another shard count.
    let foreign: Vec<u32> = w
        .units
        .values()
        .filter(|l| l.live(d) && l.holder() != w.me)
        .filter_map(Observed::shards)
        .filter(|n| *n != w.shards)
        .collect();
    let holding_any = w.units.keys().any(|u| (w.holding)(*u));
    if let Some(other) = foreign.iter().max() {
        // Both sides hold units (they started at once): the one with fewer shards gives everything up.
        if !holding_any || w.shards < *other {
            standing_back = Some(format!(
                "units are held by replicas with --shards={other} (this one has {})",
                w.shards
            ));
        }
    }
    let mut members: Vec<String> = w
        .members
        .iter()
        .filter(|m| m.live(d) && m.shards() == Some(w.shards) && m.holder() != w.me)
        .map(|m| m.holder().to_string())
        .collect();
    if w.member && !w.stopping {
        members.push(w.me.to_string());
    }
    members.sort();
    members.dedup();
    let all: Vec<Unit> = units.collect();
    let refs: Vec<&str> = members.iter().map(String::as_str).collect();
    let placement = assign(u32::try_from(all.len()).unwrap_or(u32::MAX), &refs);
    let steps = all
        .iter()
        .zip(placement)
        .map(|(unit, owner)| {
            let placed_here =
                standing_back.is_none() && !w.stopping && owner.is_some_and(|i| refs.get(i) == Some(&w.me));
            let holding = (w.holding)(*unit);
            let s = step(w.me, holding, placed_here, w.units.get(unit), d);
            // Shutting down: keep renewing what is held (its work is finishing), take nothing.
            let s = match s {
                Step::Give if w.stopping && standing_back.is_none() => Step::Renew,
                Step::Take if w.joining => Step::Wait,
                s => s,
            };
            (*unit, s)
        })
        .collect();
    Plan {
        steps,
        members,
        standing_back,
    }
}

/// A running coordinator: [`ShardHandle::release`] gives everything back once the caller's work has stopped.
pub struct ShardHandle {
    release: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl ShardHandle {
    /// Releases every unit and the membership (call after every write has finished), and waits.
    pub async fn release(self) {
        self.release.cancel();
        let _ = self.task.await;
    }
}

struct Coordinator {
    api: Api<Lease>,
    cfg: ShardConfig,
    own: Arc<Ownership>,
    metrics: Arc<Metrics>,
    /// resourceVersion of each Lease as last seen, and since when (monotonic clock).
    seen: HashMap<String, (String, Instant)>,
    /// When the last successful renewal of each held unit was sent.
    renewed: HashMap<Unit, Instant>,
    standing_back: Option<String>,
    members: usize,
}

/// Starts the coordinator. `shutdown` stops taking units; the held ones are renewed until
/// [`ShardHandle::release`].
pub fn start(
    client: kube::Client,
    cfg: ShardConfig,
    own: Arc<Ownership>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> ShardHandle {
    let release = CancellationToken::new();
    metrics.shards.set(i64::from(cfg.shards));
    for unit in own.units() {
        metrics.shard_owned.with_label_values(&[&unit.label()]).set(0);
    }
    let c = Coordinator {
        api: Api::namespaced(client, &cfg.lease.namespace),
        cfg,
        own,
        metrics,
        seen: HashMap::new(),
        renewed: HashMap::new(),
        standing_back: None,
        members: 0,
    };
    let task = tokio::spawn(run(c, shutdown, release.clone()));
    ShardHandle { release, task }
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

async fn run(mut c: Coordinator, shutdown: CancellationToken, release: CancellationToken) {
    tracing::info!(
        shards = c.cfg.shards,
        identity = %c.cfg.lease.identity,
        namespace = %c.cfg.lease.namespace,
        "sharding: joining"
    );
    loop {
        if release.is_cancelled() {
            break;
        }
        c.tick(shutdown.is_cancelled()).await;
        let pause = c
            .cfg
            .lease
            .retry_period
            .mul_f64(1.0 + 0.2 * rand::rng().random::<f64>());
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = release.cancelled() => {}
        }
    }
    c.leave().await;
}

impl Coordinator {
    /// One look at the Leases and what follows from it.
    async fn tick(&mut self, stopping: bool) {
        let sent = Instant::now();
        let listed = match self.api.list(&ListParams::default()).await {
            Ok(l) => l.items,
            Err(e) => {
                tracing::warn!(error = %e, "sharding: could not list the leases");
                self.expire();
                return;
            }
        };
        let mut units: BTreeMap<Unit, Observed> = BTreeMap::new();
        let mut members: Vec<Observed> = Vec::new();
        let prefix = self.cfg.member_prefix();
        let mine = self.cfg.member_lease(&self.cfg.lease.identity);
        let mut my_member: Option<Lease> = None;
        let mut live_names = Vec::new();
        for lease in listed {
            let name = lease.metadata.name.clone().unwrap_or_default();
            let unit = self.cfg.unit_of_lease(&name);
            if unit.is_none() && !name.starts_with(&prefix) {
                continue;
            }
            let rv = lease.metadata.resource_version.clone().unwrap_or_default();
            let unchanged_for = match self.seen.get(&name) {
                Some((seen, at)) if *seen == rv => at.elapsed(),
                _ => {
                    self.seen.insert(name.clone(), (rv, Instant::now()));
                    Duration::ZERO
                }
            };
            live_names.push(name.clone());
            if name == mine {
                my_member = Some(lease);
                continue;
            }
            let o = Observed { lease, unchanged_for };
            match unit {
                Some(u) => {
                    units.insert(u, o);
                }
                None => members.push(o),
            }
        }
        self.seen.retain(|n, _| live_names.contains(n));
        let joining = my_member.is_none();
        // Renewed while shutting down too (this replica is still alive and holds units; it leaves the placement
        // on its side and deletes the membership when it has released everything).
        let member = self.renew_membership(my_member).await;
        self.gc_members(&members).await;
        let plan = {
            let held = self.own.held();
            let holding = move |u: Unit| held.contains(&u);
            let world = World {
                me: &self.cfg.lease.identity,
                shards: self.cfg.shards,
                lease_duration: self.cfg.lease.lease_duration,
                members: members.iter().collect(),
                units: &units,
                member,
                joining,
                holding: &holding,
                stopping,
            };
            plan(&world, self.own.units())
        };
        if plan.standing_back != self.standing_back {
            match &plan.standing_back {
                Some(why) => tracing::warn!(%why, "sharding: standing back"),
                None if self.standing_back.is_some() => tracing::info!("sharding: no longer standing back"),
                None => {}
            }
            self.standing_back = plan.standing_back.clone();
        }
        if plan.members.len() != self.members {
            tracing::info!(members = ?plan.members, "sharding: live members");
            self.members = plan.members.len();
        }
        self.metrics
            .shard_members
            .set(i64::try_from(plan.members.len()).unwrap_or(i64::MAX));
        let mut gives = Vec::new();
        let mut writes = Vec::new();
        for (unit, s) in &plan.steps {
            let lease = || units.get(unit).map(|o| o.lease.clone());
            match s {
                Step::Lost => {
                    tracing::warn!(%unit, holder = units.get(unit).map(Observed::holder), "sharding: lost (taken by another replica)");
                    self.drop_unit(*unit, "lost");
                }
                Step::Give => gives.push((*unit, lease())),
                Step::Renew | Step::Take => writes.push((*unit, lease(), *s == Step::Take)),
                Step::Wait | Step::Nothing => {}
            }
        }
        // Give back (their new owners are waiting), renew and take, all at once.
        let results = {
            let this = &*self;
            let gives = futures::future::join_all(gives.into_iter().map(|(u, l)| this.give(u, l)));
            let writes =
                futures::future::join_all(writes.into_iter().map(|(u, l, take)| this.write_unit(u, l, take, sent)));
            tokio::join!(gives, writes).1
        };
        for (unit, take, result) in results {
            self.after_write(unit, take, result, sent);
        }
        self.expire();
        for unit in self.own.units() {
            let held = i64::from(self.own.held().contains(&unit));
            self.metrics.shard_owned.with_label_values(&[&unit.label()]).set(held);
        }
    }

    /// Creates or renews this replica's membership Lease; whether it is written.
    async fn renew_membership(&mut self, current: Option<Lease>) -> bool {
        let cfg = &self.cfg;
        let spec = leader::claim(
            &cfg.lease.identity,
            current.as_ref().and_then(|l| l.spec.as_ref()),
            cfg.lease.lease_duration,
            now(),
        );
        let name = cfg.member_lease(&cfg.lease.identity);
        let result = self.put(&name, current, spec).await;
        match result {
            Ok(l) => {
                self.seen_written(&l);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "sharding: could not renew the membership lease");
                false
            }
        }
    }

    /// Deletes membership Leases dead for twice the lease duration (a replica that crashed leaves one).
    async fn gc_members(&self, members: &[Observed]) {
        let d = self.cfg.lease.lease_duration.saturating_mul(2);
        for m in members.iter().filter(|m| m.unchanged_for >= d) {
            let name = m.lease.metadata.name.clone().unwrap_or_default();
            let dp = DeleteParams {
                preconditions: Some(kube::api::Preconditions {
                    resource_version: m.lease.metadata.resource_version.clone(),
                    uid: None,
                }),
                ..Default::default()
            };
            if self.api.delete(&name, &dp).await.is_ok() {
                tracing::info!(lease = %name, holder = m.holder(), "sharding: removed the membership of a dead replica");
            }
        }
    }

    /// Writes Lease `name` with `spec`: replaces `current` (the version read, so a concurrent writer makes it fail
    /// with a conflict) or creates it.
    async fn put(&self, name: &str, current: Option<Lease>, spec: LeaseSpec) -> Result<Lease, kube::Error> {
        match current {
            Some(mut lease) => {
                lease.metadata.managed_fields = None;
                lease.spec = Some(spec);
                self.annotate(&mut lease.metadata);
                self.api.replace(name, &PostParams::default(), &lease).await
            }
            None => {
                let mut metadata = ObjectMeta {
                    name: Some(name.to_string()),
                    namespace: Some(self.cfg.lease.namespace.clone()),
                    ..Default::default()
                };
                self.annotate(&mut metadata);
                let lease = Lease {
                    metadata,
                    spec: Some(spec),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
        }
    }

    fn annotate(&self, meta: &mut ObjectMeta) {
        meta.annotations
            .get_or_insert_with(Default::default)
            .insert(ANNOTATION_SHARDS.into(), self.cfg.shards.to_string());
    }

    fn seen_written(&mut self, lease: &Lease) {
        if let (Some(name), Some(rv)) = (&lease.metadata.name, &lease.metadata.resource_version) {
            self.seen.insert(name.clone(), (rv.clone(), Instant::now()));
        }
    }

    /// Takes or renews a unit's Lease.
    async fn write_unit(
        &self,
        unit: Unit,
        current: Option<Lease>,
        take: bool,
        sent: Instant,
    ) -> (Unit, bool, Result<Lease, kube::Error>) {
        let cfg = &self.cfg;
        let name = cfg.unit_lease(unit);
        let spec = leader::claim(
            &cfg.lease.identity,
            current.as_ref().and_then(|l| l.spec.as_ref()),
            cfg.lease.lease_duration,
            now(),
        );
        // A renewal must land before the fence closes; a take within a retry period.
        let limit = match self.renewed.get(&unit) {
            Some(at) if !take => cfg.lease.renew_deadline.saturating_sub(sent.duration_since(*at)),
            _ => cfg.lease.retry_period,
        };
        let write = self.put(&name, current, spec);
        let result = match tokio::time::timeout(limit, write).await {
            Ok(r) => r,
            Err(_) => Err(kube::Error::Service("the lease write timed out".into())),
        };
        // A renewal that conflicted because the list was older than our last write: if the Lease still names
        // this replica, renew once more from a fresh read.
        let result = match result {
            Err(kube::Error::Api(s)) if !take && s.code == 409 => {
                let retry = async {
                    let mut lease = self.api.get(&name).await?;
                    if lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref())
                        != Some(cfg.lease.identity.as_str())
                    {
                        return Err(kube::Error::Api(s));
                    }
                    lease.metadata.managed_fields = None;
                    lease.spec = Some(leader::claim(
                        &cfg.lease.identity,
                        lease.spec.as_ref(),
                        cfg.lease.lease_duration,
                        now(),
                    ));
                    self.annotate(&mut lease.metadata);
                    self.api.replace(&name, &PostParams::default(), &lease).await
                };
                let left = limit.saturating_sub(sent.elapsed());
                match tokio::time::timeout(left, retry).await {
                    Ok(r) => r,
                    Err(_) => Err(kube::Error::Service("the lease write timed out".into())),
                }
            }
            other => other,
        };
        (unit, take, result)
    }

    fn after_write(&mut self, unit: Unit, take: bool, result: Result<Lease, kube::Error>, sent: Instant) {
        let valid_until = sent + self.cfg.lease.renew_deadline;
        match result {
            Ok(lease) => {
                self.seen_written(&lease);
                self.renewed.insert(unit, sent);
                if take {
                    let epoch = lease
                        .spec
                        .as_ref()
                        .and_then(|s| s.lease_transitions)
                        .and_then(|t| u64::try_from(t).ok())
                        .unwrap_or(0);
                    tracing::info!(%unit, epoch, "sharding: acquired");
                    self.own.grant(unit, epoch, valid_until);
                    self.count(unit, "acquired");
                } else {
                    self.own.extend(unit, valid_until);
                }
            }
            // 409: someone else wrote the Lease first; 404: it was deleted. Either way it is not ours now.
            Err(kube::Error::Api(s)) if !take && (s.code == 409 || s.code == 404) => {
                tracing::warn!(%unit, "sharding: lost (renewal conflicted)");
                self.drop_unit(unit, "lost");
            }
            Err(kube::Error::Api(s)) if take && (s.code == 409 || s.code == 404) => {}
            Err(e) => tracing::warn!(%unit, error = %e, take, "sharding: could not write the lease"),
        }
    }

    /// Drops units whose fence closed (no renewal within the renew deadline).
    fn expire(&mut self) {
        for unit in self.own.held() {
            if matches!(self.own.check(unit), Err(super::fence::Fenced::Expired(_))) {
                tracing::error!(%unit, deadline = ?self.cfg.lease.renew_deadline, "sharding: could not renew within the renew deadline; stopped");
                self.drop_unit(unit, "expired");
            }
        }
    }

    fn drop_unit(&mut self, unit: Unit, why: &str) {
        if self.own.revoke(unit) {
            self.count(unit, why);
        }
        self.renewed.remove(&unit);
    }

    fn count(&self, unit: Unit, transition: &str) {
        self.metrics
            .shard_transitions
            .with_label_values(&[&unit.label(), transition])
            .inc();
    }

    /// Gives a unit back: its reconciles stop (and are waited for, briefly), then the Lease is released.
    async fn give(&self, unit: Unit, lease: Option<Lease>) {
        if self.own.revoke(unit) {
            self.count(unit, "released");
        }
        let waited = Instant::now();
        while self.own.in_flight(unit) > 0 && waited.elapsed() < DRAIN {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::info!(%unit, "sharding: giving back");
        if let Some(lease) = lease {
            self.release_lease(lease).await;
        }
    }

    /// Empties the holder of a Lease this replica holds (1 s duration: the next owner takes it at once).
    async fn release_lease(&self, mut lease: Lease) {
        let Some(spec) = lease.spec.as_mut() else { return };
        if spec.holder_identity.as_deref() != Some(self.cfg.lease.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now());
        lease.metadata.managed_fields = None;
        let name = lease.metadata.name.clone().unwrap_or_default();
        if let Err(e) = self.api.replace(&name, &PostParams::default(), &lease).await {
            tracing::warn!(lease = %name, error = %e, "sharding: could not release; it expires by itself");
        }
    }

    /// Shutdown: every unit given back, the membership removed.
    async fn leave(&mut self) {
        let held = self.own.held();
        let current: BTreeMap<Unit, Lease> = match self.api.list(&ListParams::default()).await {
            Ok(l) => l
                .items
                .into_iter()
                .filter_map(|lease| {
                    let u = self.cfg.unit_of_lease(lease.metadata.name.as_deref()?)?;
                    Some((u, lease))
                })
                .collect(),
            Err(_) => BTreeMap::new(),
        };
        futures::future::join_all(held.iter().map(|u| self.give(*u, current.get(u).cloned()))).await;
        let name = self.cfg.member_lease(&self.cfg.lease.identity);
        let _ = self.api.delete(&name, &DeleteParams::default()).await;
        for unit in self.own.units() {
            self.metrics.shard_owned.with_label_values(&[&unit.label()]).set(0);
        }
        tracing::info!(released = held.len(), "sharding: left");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(15);

    fn lease(holder: &str, shards: Option<u32>, unchanged_for: Duration) -> Observed {
        Observed {
            lease: Lease {
                metadata: ObjectMeta {
                    annotations: shards.map(|n| [(ANNOTATION_SHARDS.to_string(), n.to_string())].into()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(holder.into()),
                    ..Default::default()
                }),
            },
            unchanged_for,
        }
    }

    #[test]
    fn steps() {
        let fresh = lease("b", Some(4), Duration::ZERO);
        let stale = lease("b", Some(4), D);
        let free = lease("", Some(4), Duration::ZERO);
        let mine = lease("a", Some(4), Duration::ZERO);
        assert_eq!(step("a", false, true, None, D), Step::Take, "never created");
        assert_eq!(step("a", false, true, Some(&free), D), Step::Take, "released");
        assert_eq!(
            step("a", false, true, Some(&fresh), D),
            Step::Wait,
            "its holder still renews"
        );
        assert_eq!(step("a", false, true, Some(&stale), D), Step::Take, "expired");
        assert_eq!(step("a", false, false, Some(&free), D), Step::Nothing);
        assert_eq!(step("a", true, true, Some(&mine), D), Step::Renew);
        assert_eq!(step("a", true, false, Some(&mine), D), Step::Give);
        assert_eq!(step("a", true, true, Some(&fresh), D), Step::Lost, "someone took it");
    }

    fn world<'a>(
        me: &'a str,
        members: Vec<&'a Observed>,
        units: &'a BTreeMap<Unit, Observed>,
        holding: &'a dyn Fn(Unit) -> bool,
    ) -> World<'a> {
        World {
            me,
            shards: 4,
            lease_duration: D,
            members,
            units,
            member: true,
            joining: false,
            holding,
            stopping: false,
        }
    }

    fn all_units() -> impl Iterator<Item = Unit> {
        (0..4).map(Unit::Shard).chain([Unit::Cluster])
    }

    #[test]
    fn three_replicas_split_the_units_and_a_dead_one_is_left_out() {
        let b = lease("b", Some(4), Duration::ZERO);
        let c = lease("c", Some(4), Duration::ZERO);
        let none: BTreeMap<Unit, Observed> = BTreeMap::new();
        let nothing = |_: Unit| false;
        let p = plan(&world("a", vec![&b, &c], &none, &nothing), all_units());
        assert_eq!(p.members, ["a", "b", "c"]);
        let takes = p.steps.iter().filter(|(_, s)| *s == Step::Take).count();
        assert!((1..=2).contains(&takes), "{p:?}");
        // Every replica computes the same placement: together they take every unit exactly once.
        let mut taken = 0;
        for (me, others) in [("a", vec![&b, &c]), ("b", vec![&c]), ("c", vec![&b])] {
            let a = lease("a", Some(4), Duration::ZERO);
            let mut ms = others.clone();
            ms.push(&a);
            let ms: Vec<&Observed> = ms.into_iter().filter(|m| m.holder() != me).collect();
            taken += plan(&world(me, ms, &none, &nothing), all_units())
                .steps
                .iter()
                .filter(|(_, s)| *s == Step::Take)
                .count();
        }
        assert_eq!(taken, 5);
        // c stopped renewing its membership a lease duration ago: it is out.
        let dead_c = lease("c", Some(4), D);
        let p = plan(&world("a", vec![&b, &dead_c], &none, &nothing), all_units());
        assert_eq!(p.members, ["a", "b"]);
    }

    #[test]
    fn a_leader_mode_replica_or_another_shard_count_keeps_this_one_back() {
        let nothing = |_: Unit| false;
        let leader: BTreeMap<Unit, Observed> = [(Unit::Cluster, lease("old", None, Duration::ZERO))].into();
        let p = plan(&world("a", vec![], &leader, &nothing), all_units());
        assert!(p.standing_back.is_some());
        assert!(p.steps.iter().all(|(_, s)| *s == Step::Nothing), "{p:?}");
        // An expired leader does not.
        let expired: BTreeMap<Unit, Observed> = [(Unit::Cluster, lease("old", None, D))].into();
        assert!(
            plan(&world("a", vec![], &expired, &nothing), all_units())
                .standing_back
                .is_none()
        );

        // Units held by replicas with 8 shards: a replica with 4 that holds nothing waits…
        let eight: BTreeMap<Unit, Observed> = [(Unit::Shard(1), lease("x", Some(8), Duration::ZERO))].into();
        let p = plan(&world("a", vec![], &eight, &nothing), all_units());
        assert!(p.standing_back.is_some());
        // …and one that holds units gives them up (fewer shards yields).
        let holding = |u: Unit| u == Unit::Shard(0);
        let mut mixed = eight.clone();
        mixed.insert(Unit::Shard(0), lease("a", Some(4), Duration::ZERO));
        let p = plan(&world("a", vec![], &mixed, &holding), all_units());
        assert!(p.steps.contains(&(Unit::Shard(0), Step::Give)), "{p:?}");
    }

    #[test]
    fn a_joining_replica_takes_nothing_until_it_has_seen_the_others() {
        let none: BTreeMap<Unit, Observed> = BTreeMap::new();
        let nothing = |_: Unit| false;
        let mut w = world("a", vec![], &none, &nothing);
        w.joining = true;
        let p = plan(&w, all_units());
        assert_eq!(p.members, ["a"], "it is a member (its Lease was written)");
        assert!(p.steps.iter().all(|(_, s)| *s == Step::Wait), "{p:?}");
        // What it holds is still renewed (its membership Lease had been deleted meanwhile).
        let holding = |u: Unit| u == Unit::Shard(1);
        let units: BTreeMap<Unit, Observed> = [(Unit::Shard(1), lease("a", Some(4), Duration::ZERO))].into();
        let mut w = world("a", vec![], &units, &holding);
        w.joining = true;
        assert!(plan(&w, all_units()).steps.contains(&(Unit::Shard(1), Step::Renew)));
        w.joining = false;
        let p = plan(&w, all_units());
        assert_eq!(p.steps.iter().filter(|(_, s)| *s == Step::Take).count(), 4, "{p:?}");
    }

    #[test]
    fn shutting_down_takes_nothing_and_keeps_renewing() {
        let holding = |u: Unit| u == Unit::Shard(2);
        let units: BTreeMap<Unit, Observed> = [(Unit::Shard(2), lease("a", Some(4), Duration::ZERO))].into();
        let mut w = world("a", vec![], &units, &holding);
        w.stopping = true;
        let p = plan(&w, all_units());
        assert!(p.members.is_empty());
        for (u, s) in p.steps {
            if u == Unit::Shard(2) {
                assert_eq!(s, Step::Renew);
            } else {
                assert_eq!(s, Step::Nothing, "{u}");
            }
        }
    }

    #[test]
    fn lease_names() {
        let cfg = ShardConfig {
            lease: LeaseConfig {
                namespace: "ns".into(),
                name: "external-secrets-controller".into(),
                identity: "pod-0_1".into(),
                lease_duration: D,
                renew_deadline: Duration::from_secs(10),
                retry_period: Duration::from_secs(2),
            },
            shards: 4,
        };
        assert!(cfg.validate().is_ok());
        assert_eq!(cfg.unit_lease(Unit::Cluster), "external-secrets-controller");
        assert_eq!(cfg.unit_lease(Unit::Shard(3)), "external-secrets-controller-shard-3");
        assert_eq!(
            cfg.unit_of_lease("external-secrets-controller-shard-3"),
            Some(Unit::Shard(3))
        );
        assert_eq!(
            cfg.unit_of_lease("external-secrets-controller-shard-4"),
            None,
            "beyond --shards"
        );
        assert_eq!(cfg.unit_of_lease("external-secrets-controller"), Some(Unit::Cluster));
        assert_eq!(cfg.unit_of_lease("other"), None);
        let m = cfg.member_lease("pod-0_1");
        assert!(m.starts_with("external-secrets-controller-member-") && m.len() < 63);
        let mut bad = cfg.clone();
        bad.shards = 0;
        assert!(bad.validate().is_err());
        bad.shards = super::super::MAX_SHARDS + 1;
        assert!(bad.validate().is_err());
    }
}
