//! The controller kit: what every controller here is made of, written once.
//!
//! - [`watch`]: one watch-to-queue loop (stop token, watch errors skipped, the readiness gate opened on the first
//!   full list); a controller gives only what an event means.
//! - [`Reconciler`] and [`run`]: one worker loop for every controller. It takes keys from the
//!   controller's fair queue ([`crate::schedule::Scheduler`]), runs the reconcile under **supervision** (a panic
//!   is caught, counted in `syncret_reconcile_panics_total{controller}` and reported on the object, and the worker
//!   goes on) and a **deadline** (`--reconcile-timeout`: the reconcile future, with its in-flight requests, is
//!   dropped when it passes), then requeues by one policy: periodic refreshes jittered, failures retried with
//!   exponential backoff from **one failure count per object**.
//! - [`Written`]: "the status we wrote that the watch has not shown yet", for the controllers that write status.
//! - [`Liveness`]: `/healthz` fails when a controller's workers are wedged (work waiting and no reconcile finished
//!   for twice the deadline), so the kubelet restarts the pod.
use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{FutureExt, Stream, StreamExt};
use kube::runtime::watcher;
use rand::Rng;
use tokio_util::sync::CancellationToken;

use crate::admin::Readiness;
use crate::context::Context;
use crate::schedule::{Lane, Scheduler, Tenant, backoff, jittered};
use crate::shard::Unit;

/// What the worker does next with an object after a reconcile.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Look again after this long (periodic refresh), or only on change.
    After(Option<Duration>),
    /// Failed: retry with backoff (at least the given delay, e.g. a provider's retry-after).
    Retry(Option<Duration>),
    /// Not ours, or gone: do nothing until something changes.
    Idle,
}

/// Why a reconcile did not come to an end by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Abort {
    /// It panicked; the panic's message (never a value: panics print code locations and our own texts).
    Panicked(String),
    /// It was still running at the reconcile deadline and was dropped.
    DeadlineExceeded(Duration),
}

impl Abort {
    /// The condition reason and the event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Abort::Panicked(_) => "InternalError",
            Abort::DeadlineExceeded(_) => "DeadlineExceeded",
        }
    }
}

impl Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Abort::Panicked(m) => write!(
                f,
                "internal error: the reconcile panicked ({m}); it is retried with backoff"
            ),
            Abort::DeadlineExceeded(d) => write!(
                f,
                "the reconcile did not finish within {}s (--reconcile-timeout) and was stopped; it is retried with backoff",
                d.as_secs()
            ),
        }
    }
}

/// One controller: what its keys are, where they queue, how one is reconciled. Instances are values; the kit
/// runs them all the same way ([`run`]).
pub trait Reconciler: Send + Sync + 'static {
    type Key: Clone + Eq + Hash + Tenant + std::fmt::Debug + Send + Sync + 'static;

    /// The controller's name in metrics (`controller_runtime_reconcile_total{controller}`) and logs.
    fn name(&self) -> &'static str;

    /// Its queue.
    fn queue<'c>(&self, ctx: &'c Context) -> &'c Scheduler<Self::Key>;

    /// How many workers it runs.
    fn workers(&self, ctx: &Context) -> usize;

    /// Reconciles one object. Level-triggered: it never depends on which event queued the key.
    fn reconcile(&self, ctx: &Arc<Context>, key: &Self::Key) -> impl Future<Output = Next> + Send;

    /// After a panic or the deadline: say so on the object (condition, event). Default: nothing to say.
    fn aborted(&self, ctx: &Arc<Context>, key: &Self::Key, why: &Abort) -> impl Future<Output = ()> + Send {
        let _ = (ctx, key, why);
        async {}
    }

    /// The share of jitter ([0, 1)) the object's refreshes get; `None`: a random one.
    fn jitter_unit(&self, ctx: &Context, key: &Self::Key) -> Option<f64> {
        let _ = (ctx, key);
        None
    }

    /// Called after each reconcile (per-controller metrics).
    fn observe(&self, ctx: &Context, key: &Self::Key, lane: Lane, ok: bool, elapsed: Duration) {
        let _ = (ctx, key, lane, ok, elapsed);
    }

    /// The unit of ownership the object belongs to with `--shards` ([`crate::shard`]): its namespace's shard for
    /// namespaced work split among replicas, else the cluster unit (the default: one replica does it).
    fn unit(&self, ctx: &Context, key: &Self::Key) -> Unit {
        let _ = (ctx, key);
        Unit::Cluster
    }
}

/// Failure counts per object, for backoff: one count per object, whichever worker handled it.
pub struct Failures<K>(Mutex<HashMap<K, u32>>);

impl<K: Eq + Hash> Default for Failures<K> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<K: Eq + Hash> Failures<K> {
    pub fn inc(&self, key: K) -> u32 {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(key).or_default();
        *n = n.saturating_add(1);
        *n
    }

    pub fn reset(&self, key: &K) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    pub fn get(&self, key: &K) -> u32 {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied()
            .unwrap_or(0)
    }
}

/// Where the key goes after a reconcile: the requeue policy every controller shares. Pure.
pub fn requeue(
    next: &Next,
    failures: u32,
    settings: &crate::context::Settings,
    unit: f64,
    random: f64,
) -> Option<Duration> {
    match next {
        Next::After(Some(d)) => Some(jittered(*d, settings.refresh_jitter, unit)),
        Next::After(None) | Next::Idle => None,
        Next::Retry(at_least) => {
            let d = backoff(failures, settings.backoff_base, settings.backoff_max, random);
            Some(d.max(at_least.unwrap_or_default()))
        }
    }
}

/// Runs one reconcile under supervision (a panic is caught) and the deadline (past it, the future is dropped).
pub async fn supervised<T>(run: impl Future<Output = T>, deadline: Duration) -> Result<T, Abort> {
    let run = AssertUnwindSafe(run).catch_unwind();
    match tokio::time::timeout(deadline, run).await {
        Ok(Ok(next)) => Ok(next),
        Ok(Err(panic)) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            Err(Abort::Panicked(msg))
        }
        Err(_) => Err(Abort::DeadlineExceeded(deadline)),
    }
}

/// Runs a controller: its workers, and a sampler that keeps its queue gauges and [`Liveness`] current every 2 s
/// and closes its queue when `stop` fires (the workers then finish their reconcile and end).
pub fn run<R: Reconciler>(r: Arc<R>, ctx: &Arc<Context>, stop: &CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
    let n = r.workers(ctx).max(1);
    let failures = Arc::new(Failures::<R::Key>::default());
    let progress = ctx.liveness.register(r.name());
    ctx.metrics.workers_started(&[(r.name(), n)]);
    let mut handles: Vec<_> = (0..n)
        .map(|_| {
            let (r, ctx, failures, progress) = (r.clone(), ctx.clone(), failures.clone(), progress.clone());
            tokio::spawn(async move { worker(r, ctx, failures, progress).await })
        })
        .collect();
    let (ctx, stop) = (ctx.clone(), stop.clone());
    handles.push(tokio::spawn(async move {
        loop {
            let s = r.queue(&ctx).stats();
            let waiting = s.fast.saturating_add(s.slow);
            ctx.metrics
                .workqueue_depth
                .with_label_values(&[r.name()])
                .set(i64::try_from(waiting).unwrap_or(i64::MAX));
            ctx.metrics.in_flight(&[(r.name(), s.in_flight)]);
            progress.sample(Instant::now(), waiting > 0 || s.in_flight > 0);
            tokio::select! {
                _ = tokio::time::sleep(SAMPLE) => {}
                _ = stop.cancelled() => {
                    r.queue(&ctx).close();
                    return;
                }
            }
        }
    }));
    handles
}

/// How often queue gauges and liveness are sampled.
const SAMPLE: Duration = Duration::from_secs(2);

/// How soon a key of a unit still held but past its fence is taken again (its renewal is late, not lost).
const FENCED_RETRY: Duration = Duration::from_secs(1);

/// A key this replica may not reconcile now: forgotten when its unit is held elsewhere (queued again by
/// [`crate::controller`]'s priming if the unit comes here), put back for a moment when the unit is still this
/// replica's but its fence is closed (a late renewal), so nothing is lost if the renewal lands.
fn set_aside<R: Reconciler>(r: &R, ctx: &Context, key: R::Key, unit: Unit) {
    let queue = r.queue(ctx);
    queue.done(&key);
    if ctx.shards.assigned(unit) {
        queue.add_after(key, Lane::Fast, FENCED_RETRY);
    } else {
        queue.forget(&key);
    }
}

async fn worker<R: Reconciler>(r: Arc<R>, ctx: Arc<Context>, failures: Arc<Failures<R::Key>>, progress: Arc<Progress>) {
    let deadline = ctx.settings.reconcile_timeout;
    while let Some((key, lane)) = r.queue(&ctx).next().await {
        // Sharding: only keys of units this replica holds; the others are their holder's (dropped here, queued
        // again if the unit comes to this replica). The reconcile stops when the unit is given up or its fence
        // closes (its in-flight requests dropped), so a replica writes nothing for a unit it no longer holds.
        let unit = r.unit(&ctx, &key);
        let Some(tenure) = ctx.shards.tenure(unit) else {
            set_aside(&*r, &ctx, key, unit);
            continue;
        };
        let start = Instant::now();
        let held = tokio::select! {
            biased;
            _ = tenure.lost() => None,
            n = supervised(r.reconcile(&ctx, &key), deadline) => Some(n),
        };
        let Some(outcome) = held else {
            tracing::debug!(controller = r.name(), object = ?key, %unit, "reconcile stopped: the unit was given up or its fence closed");
            set_aside(&*r, &ctx, key, unit);
            continue;
        };
        if ctx.shards.is_sharded() {
            ctx.metrics
                .shard_reconciles
                .with_label_values(&[&unit.label(), r.name()])
                .inc();
        }
        let next = match outcome {
            Ok(next) => next,
            Err(abort) => {
                match &abort {
                    Abort::Panicked(m) => {
                        ctx.metrics.reconcile_panics.with_label_values(&[r.name()]).inc();
                        tracing::error!(controller = r.name(), object = ?key, panic = %m, "reconcile panicked");
                    }
                    Abort::DeadlineExceeded(_) => {
                        ctx.metrics.reconcile_timeouts.with_label_values(&[r.name()]).inc();
                        tracing::warn!(controller = r.name(), object = ?key, "reconcile deadline exceeded");
                    }
                }
                // Reporting is bounded too: it writes one status and one event.
                let report = AssertUnwindSafe(r.aborted(&ctx, &key, &abort)).catch_unwind();
                if tokio::time::timeout(deadline, report).await.is_err() {
                    tracing::warn!(controller = r.name(), object = ?key, "could not report an aborted reconcile in time");
                }
                Next::Retry(None)
            }
        };
        drop(tenure);
        let elapsed = start.elapsed();
        let ok = !matches!(next, Next::Retry(_));
        ctx.metrics.reconciled(r.name(), ok, elapsed);
        r.observe(&ctx, &key, lane, ok, elapsed);
        progress.finished();
        let n = if ok {
            failures.reset(&key);
            0
        } else {
            failures.inc(key.clone())
        };
        let jitter = r.jitter_unit(&ctx, &key).unwrap_or_else(|| rand::rng().random::<f64>());
        let queue = r.queue(&ctx);
        queue.done(&key);
        if let Some(d) = requeue(&next, n, &ctx.settings, jitter, rand::rng().random::<f64>()) {
            queue.add_after(key, Lane::Slow, d);
        }
    }
}

/// "The status we wrote that the watch has not shown yet", for one object: a reconcile right after a write
/// (e.g. woken by our own Secret write) must see it, or it would act again; the watch drops it once it shows it.
/// [`Written`] keeps these per object; the ExternalSecret controller keeps its slot in its per-object state.
pub mod written {
    use std::sync::Arc;

    /// The watch shows `theirs`: our copy goes once the watch has caught up with it.
    pub fn seen<S: PartialEq>(mine: &mut Option<S>, theirs: Option<&S>) {
        if mine.as_ref().is_some_and(|m| theirs == Some(m)) {
            *mine = None;
        }
    }

    /// `obj` with our status when the watch is behind it (`status` reads and replaces the object's).
    pub fn overlay<O: Clone, S: PartialEq + Clone>(
        mine: &mut Option<S>,
        obj: Arc<O>,
        status: impl Fn(&mut O) -> &mut Option<S>,
    ) -> Arc<O> {
        let Some(m) = mine.as_ref() else { return obj };
        let mut theirs = (*obj).clone();
        if status(&mut theirs).as_ref() == Some(m) {
            *mine = None;
            return obj;
        }
        *status(&mut theirs) = Some(m.clone());
        Arc::new(theirs)
    }
}

/// Statuses this operator wrote that the watch has not shown yet, per object (see [`written`]).
pub struct Written<K, S>(Mutex<HashMap<K, S>>);

impl<K: Eq + Hash + Clone, S: PartialEq + Clone> Default for Written<K, S> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<K: Eq + Hash + Clone, S: PartialEq + Clone> Written<K, S> {
    fn slot<T>(&self, key: &K, f: impl FnOnce(&mut Option<S>) -> T) -> T {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut slot = m.remove(key);
        let out = f(&mut slot);
        if let Some(s) = slot {
            m.insert(key.clone(), s);
        }
        out
    }

    /// A status about to be written.
    pub fn record(&self, key: K, status: S) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(key, status);
    }

    /// The write failed, or the object is gone: forget it.
    pub fn forget(&self, key: &K) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    /// Keeps the statuses of the objects `keep` accepts (a shard given up).
    pub fn retain(&self, keep: impl Fn(&K) -> bool) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).retain(|k, _| keep(k));
    }

    /// The watch shows `status`.
    pub fn seen(&self, key: &K, status: Option<&S>) {
        self.slot(key, |mine| written::seen(mine, status));
    }

    /// The status we wrote, if the watch is behind it.
    pub fn get(&self, key: &K) -> Option<S> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned()
    }

    /// `obj` with the status we wrote when the watch has not caught up.
    pub fn overlay<O: Clone>(&self, key: &K, obj: Arc<O>, status: impl Fn(&mut O) -> &mut Option<S>) -> Arc<O> {
        self.slot(key, |mine| written::overlay(mine, obj, status))
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Marks one watch as listed; readiness is set when all are.
pub struct InitGate {
    remaining: AtomicUsize,
    readiness: Arc<Readiness>,
    listed: tokio::sync::Notify,
}

impl InitGate {
    pub fn new(watches: usize, readiness: Arc<Readiness>) -> Arc<Self> {
        let gate = Arc::new(Self {
            remaining: AtomicUsize::new(watches),
            readiness,
            listed: tokio::sync::Notify::new(),
        });
        if watches == 0 {
            gate.readiness.set_ready();
        }
        gate
    }

    /// One more watch listed (a second call for the same watch is the caller's bug; it never underflows).
    pub fn done(&self) {
        let prev = self
            .remaining
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if prev == Ok(1) {
            self.readiness.set_ready();
            self.listed.notify_waiters();
        }
    }

    pub async fn wait(&self) {
        let n = self.listed.notified();
        tokio::pin!(n);
        n.as_mut().enable();
        if self.remaining.load(Ordering::SeqCst) == 0 {
            return;
        }
        n.await;
    }
}

/// Where a watch event arrives: during the initial list (or a relist), or afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The first list since start is still coming in (the gate is not yet open for this watch).
    Listing,
    /// After the first list.
    Watching,
}

/// The one watch loop: feeds every event of `stream` to `on` until `stop` fires or the stream ends, skips watch
/// errors (the stream's backoff retries them), and opens one slot of `gate` at the end of the first list.
pub async fn watch<K, S>(
    stream: S,
    gate: Option<Arc<InitGate>>,
    stop: CancellationToken,
    mut on: impl FnMut(watcher::Event<K>, Phase),
) where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    let mut phase = Phase::Listing;
    loop {
        let ev = tokio::select! { e = stream.next() => e, _ = stop.cancelled() => break };
        let Some(ev) = ev else { break };
        let Ok(ev) = ev else { continue };
        let init_done = matches!(ev, watcher::Event::InitDone);
        on(ev, phase);
        if init_done && phase == Phase::Listing {
            phase = Phase::Watching;
            if let Some(g) = &gate {
                g.done();
            }
        }
    }
}

/// One controller's progress, for [`Liveness`].
pub struct Progress {
    name: &'static str,
    finished: AtomicU64,
    /// The finished count last sampled, and since when it has not moved while the controller had work.
    track: Mutex<(u64, Option<Instant>)>,
}

impl Progress {
    fn finished(&self) {
        self.finished.fetch_add(1, Ordering::Relaxed);
    }

    /// One sample at `now`: `busy` when work is queued or in flight.
    fn sample(&self, now: Instant, busy: bool) {
        let count = self.finished.load(Ordering::Relaxed);
        let mut t = self.track.lock().unwrap_or_else(|e| e.into_inner());
        if count != t.0 || !busy {
            *t = (count, None);
        } else if t.1.is_none() {
            t.1 = Some(now);
        }
    }

    /// Since when the controller has had work and finished nothing.
    fn stuck_since(&self) -> Option<Instant> {
        self.track.lock().unwrap_or_else(|e| e.into_inner()).1
    }
}

/// Whether the workers make progress: `/healthz` fails when a controller has had work (queued or in flight) and
/// finished no reconcile for longer than twice the reconcile deadline. Only controllers whose workers run are
/// watched (a standby replica has none).
#[derive(Default)]
pub struct Liveness {
    controllers: Mutex<Vec<Arc<Progress>>>,
}

impl Liveness {
    fn register(&self, name: &'static str) -> Arc<Progress> {
        let progress = Arc::new(Progress {
            name,
            finished: AtomicU64::new(0),
            track: Mutex::new((0, None)),
        });
        self.controllers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(progress.clone());
        progress
    }

    /// The first controller stuck for longer than `limit` at `now`, if any.
    pub fn wedged(&self, now: Instant, limit: Duration) -> Option<&'static str> {
        self.controllers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|p| {
                p.stuck_since()
                    .is_some_and(|since| now.saturating_duration_since(since) > limit)
            })
            .map(|p| p.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Settings;

    #[test]
    fn requeue_jitters_refreshes_and_backs_off_failures() {
        let s = Settings::default();
        let h = Duration::from_secs(3600);
        assert_eq!(requeue(&Next::After(Some(h)), 0, &s, 0.0, 0.5), Some(h));
        assert!(requeue(&Next::After(Some(h)), 0, &s, 1.0, 0.5) < Some(h));
        assert_eq!(requeue(&Next::After(None), 0, &s, 0.0, 0.0), None);
        assert_eq!(requeue(&Next::Idle, 3, &s, 0.0, 0.0), None);
        assert_eq!(requeue(&Next::Retry(None), 1, &s, 0.0, 0.0), Some(s.backoff_base));
        assert_eq!(requeue(&Next::Retry(None), 3, &s, 0.0, 0.0), Some(s.backoff_base * 4));
        assert_eq!(requeue(&Next::Retry(None), 99, &s, 0.0, 1.0), Some(s.backoff_max));
        // A provider's Retry-After is honoured as a floor.
        let ra = Duration::from_secs(120);
        assert_eq!(requeue(&Next::Retry(Some(ra)), 1, &s, 0.0, 0.0), Some(ra));
    }

    #[test]
    fn failures_count_per_object() {
        let f = Failures::default();
        assert_eq!(f.inc("a"), 1);
        assert_eq!(f.inc("a"), 2);
        assert_eq!(f.inc("b"), 1);
        f.reset(&"a");
        assert_eq!(f.get(&"a"), 0);
        assert_eq!(f.get(&"b"), 1);
    }

    #[test]
    fn written_status_is_overlaid_until_the_watch_shows_it() {
        #[derive(Clone, Debug, PartialEq)]
        struct Obj {
            status: Option<u32>,
        }
        let w: Written<&str, u32> = Written::default();
        let obj = Arc::new(Obj { status: Some(1) });
        assert_eq!(w.overlay(&"a", obj.clone(), |o| &mut o.status).status, Some(1));
        w.record("a", 2);
        assert_eq!(w.overlay(&"a", obj.clone(), |o| &mut o.status).status, Some(2));
        w.seen(&"a", Some(&1));
        assert_eq!(w.get(&"a"), Some(2), "an older status from the watch keeps ours");
        w.seen(&"a", Some(&2));
        assert!(w.is_empty(), "the watch caught up");
        w.record("b", 3);
        let caught_up = Arc::new(Obj { status: Some(3) });
        assert_eq!(w.overlay(&"b", caught_up, |o| &mut o.status).status, Some(3));
        assert!(w.is_empty());
    }

    #[test]
    fn liveness_fails_only_when_busy_without_progress() {
        let l = Liveness::default();
        let p = l.register("es");
        let t0 = Instant::now();
        let limit = Duration::from_secs(120);
        let at = |s: u64| t0 + Duration::from_secs(s);
        p.sample(t0, false);
        p.sample(at(500), false);
        assert_eq!(l.wedged(at(500), limit), None, "idle is not wedged");
        p.sample(at(600), true);
        p.sample(at(700), true);
        assert_eq!(l.wedged(at(700), limit), None, "busy for 100 s, within the limit");
        assert_eq!(l.wedged(at(721), limit), Some("es"));
        p.finished();
        p.sample(at(722), true);
        assert_eq!(l.wedged(at(722), limit), None, "a finished reconcile is progress");
        p.sample(at(800), true);
        p.sample(at(900), false);
        assert_eq!(l.wedged(at(1000), limit), None, "the work went away");
    }

    #[tokio::test]
    async fn a_panic_is_caught_and_a_hung_reconcile_is_dropped_at_the_deadline() {
        let ok = supervised(async { Next::Idle }, Duration::from_secs(1)).await;
        assert_eq!(ok, Ok(Next::Idle));
        let panicked = supervised(
            async {
                let d = Duration::from_secs(u64::MAX);
                // What a provider's huge Retry-After did to a worker before (`Instant + Duration` overflow).
                let _ = std::hint::black_box(Instant::now()) + d;
                Next::Idle
            },
            Duration::from_secs(1),
        )
        .await;
        assert!(
            matches!(&panicked, Err(Abort::Panicked(m)) if m.contains("overflow")),
            "{panicked:?}"
        );
        let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        struct OnDrop(Arc<std::sync::atomic::AtomicBool>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let guard = OnDrop(dropped.clone());
        let hung = supervised(
            async move {
                let _g = guard;
                futures::future::pending::<()>().await;
                Next::Idle
            },
            Duration::from_millis(50),
        )
        .await;
        assert_eq!(hung, Err(Abort::DeadlineExceeded(Duration::from_millis(50))));
        assert!(dropped.load(Ordering::SeqCst), "the in-flight work was dropped");
        assert!(
            Abort::DeadlineExceeded(Duration::from_secs(60))
                .to_string()
                .contains("60s")
        );
    }

    #[tokio::test]
    async fn the_gate_opens_when_every_watch_listed() {
        let r = Arc::new(Readiness::default());
        let g = InitGate::new(2, r.clone());
        g.done();
        assert!(!r.is_ready());
        g.done();
        assert!(r.is_ready());
        g.done();
        g.wait().await;
        assert!(InitGate::new(0, Arc::new(Readiness::default())).readiness.is_ready());
    }
}
