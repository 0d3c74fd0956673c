//! Watching a set converge: an ExternalSecret watch (Ready condition, `status.refreshTime`) and a Secret watch
//! (managed label; data compared with what the set must produce). Watches only: the bench makes no requests of
//! its own while an operator is measured, so the apiserver's counters are the operator's.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};

use crate::workload::{DATA_KEY, Layout, MANAGED_LABEL, SET_LABEL, Set, es_resource};

#[derive(Clone, Debug, Default)]
struct Item {
    ready: bool,
    ready_at: Option<Instant>,
    secret_ok: bool,
    secret_rv: Option<String>,
    refresh: Option<DateTime<Utc>>,
    wave_base: Option<DateTime<Utc>>,
    wave_done: bool,
}

/// What the watches saw.
#[derive(Debug)]
pub struct State {
    items: Vec<Item>,
    pub ready: usize,
    pub secrets_ok: usize,
    /// When every ExternalSecret was Ready and every Secret right, first.
    pub done_at: Option<Instant>,
    /// Changes (new resourceVersions) of Secrets that were already right: writes.
    pub secret_writes: u64,
    /// Wave bookkeeping (see [`Tracker::begin_wave`]).
    pub wave_refreshed: usize,
    pub wave_first: Option<Instant>,
    pub wave_last: Option<Instant>,
    wave_active: bool,
    /// Messages of non-Ready conditions seen (first few), for diagnosis.
    pub not_ready: std::collections::BTreeMap<String, usize>,
    pub secrets_wrong: u64,
    /// Watches that finished their initial list.
    pub listed: usize,
    watches: usize,
}

/// Watches one [`Set`].
pub struct Tracker {
    pub set: Set,
    state: Arc<Mutex<State>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn refresh_time(o: &DynamicObject) -> Option<DateTime<Utc>> {
    o.data
        .pointer("/status/refreshTime")
        .and_then(|v| v.as_str())
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn ready_condition(o: &DynamicObject) -> Option<(bool, String)> {
    let conds = o.data.pointer("/status/conditions")?.as_array()?;
    let c = conds.iter().find(|c| c["type"] == "Ready")?;
    Some((
        c["status"] == "True",
        c["message"].as_str().unwrap_or_default().chars().take(160).collect(),
    ))
}

impl State {
    fn complete(&self) -> bool {
        self.ready == self.items.len() && self.secrets_ok == self.items.len()
    }

    fn check_done(&mut self, es_tracked: bool) {
        let ready_ok = !es_tracked || self.ready == self.items.len();
        if self.done_at.is_none() && ready_ok && self.secrets_ok == self.items.len() {
            self.done_at = Some(Instant::now());
        }
    }
}

impl Tracker {
    /// Starts the watches. `with_es`: also watch the ExternalSecrets (not for direct-write Secrets).
    pub fn start(client: &Client, layout: &Layout, set: &Set, with_es: bool) -> Tracker {
        let state = Arc::new(Mutex::new(State {
            items: vec![Item::default(); set.n],
            ready: 0,
            secrets_ok: 0,
            done_at: None,
            secret_writes: 0,
            wave_refreshed: 0,
            wave_first: None,
            wave_last: None,
            wave_active: false,
            not_ready: Default::default(),
            secrets_wrong: 0,
            listed: 0,
            watches: if with_es { 2 } else { 1 },
        }));
        let mut tasks = Vec::new();
        if with_es {
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &es_resource());
            let cfg = watcher::Config::default().labels(&format!("{SET_LABEL}={}", set.tag));
            let (st, set2, layout2) = (state.clone(), set.clone(), layout.clone());
            tasks.push(tokio::spawn(async move {
                let mut s = std::pin::pin!(watcher::watcher(api, cfg));
                let mut listed = false;
                while let Some(ev) = s.next().await {
                    if !listed && matches!(ev, Ok(Event::InitDone)) {
                        listed = true;
                        st.lock().unwrap_or_else(|e| e.into_inner()).listed += 1;
                    }
                    let Ok(Event::Apply(o) | Event::InitApply(o)) = ev else {
                        continue;
                    };
                    let Some(i) = set2.index_of(&o.name_any()) else {
                        continue;
                    };
                    if o.namespace().as_deref() != Some(set2.namespace(&layout2, i).as_str()) {
                        continue;
                    }
                    let cond = ready_condition(&o);
                    let rt = refresh_time(&o);
                    let mut g = st.lock().unwrap_or_else(|e| e.into_inner());
                    let g = &mut *g;
                    let Some(item) = g.items.get_mut(i) else { continue };
                    let ready = cond.as_ref().is_some_and(|c| c.0);
                    if ready && !item.ready {
                        g.ready += 1;
                        item.ready_at.get_or_insert_with(Instant::now);
                    } else if !ready && item.ready {
                        g.ready -= 1;
                    }
                    item.ready = ready;
                    if let Some((false, msg)) = &cond
                        && g.not_ready.len() < 20
                    {
                        *g.not_ready.entry(msg.clone()).or_default() += 1;
                    }
                    if rt.is_some() && rt > item.refresh {
                        item.refresh = rt;
                    }
                    if g.wave_active && !item.wave_done && item.refresh > item.wave_base {
                        item.wave_done = true;
                        g.wave_refreshed += 1;
                        let now = Instant::now();
                        g.wave_first.get_or_insert(now);
                        g.wave_last = Some(now);
                    }
                    g.check_done(true);
                }
            }));
        }
        {
            let api: Api<Secret> = Api::all(client.clone());
            let cfg = watcher::Config::default().labels(&format!("{MANAGED_LABEL}=true"));
            let (st, set2, layout2) = (state.clone(), set.clone(), layout.clone());
            tasks.push(tokio::spawn(async move {
                let mut s = std::pin::pin!(watcher::watcher(api, cfg));
                let mut listed = false;
                while let Some(ev) = s.next().await {
                    if !listed && matches!(ev, Ok(Event::InitDone)) {
                        listed = true;
                        st.lock().unwrap_or_else(|e| e.into_inner()).listed += 1;
                    }
                    let (sec, deleted) = match ev {
                        Ok(Event::Apply(o) | Event::InitApply(o)) => (o, false),
                        Ok(Event::Delete(o)) => (o, true),
                        _ => continue,
                    };
                    let Some(i) = set2.index_of(&sec.name_any()) else {
                        continue;
                    };
                    if sec.namespace().as_deref() != Some(set2.namespace(&layout2, i).as_str()) {
                        continue;
                    }
                    let expected = layout2.expected(set2.provider, i);
                    let ok = !deleted
                        && sec
                            .data
                            .as_ref()
                            .and_then(|d| d.get(DATA_KEY))
                            .is_some_and(|v| v.0 == expected.as_bytes());
                    let rv = sec.resource_version();
                    let mut g = st.lock().unwrap_or_else(|e| e.into_inner());
                    let g = &mut *g;
                    let Some(item) = g.items.get_mut(i) else { continue };
                    if item.secret_ok && rv != item.secret_rv {
                        g.secret_writes += 1;
                    }
                    if !ok && !deleted {
                        g.secrets_wrong += 1;
                    }
                    if ok && !item.secret_ok {
                        g.secrets_ok += 1;
                    } else if !ok && item.secret_ok {
                        g.secrets_ok -= 1;
                    }
                    item.secret_ok = ok;
                    item.secret_rv = rv;
                    g.check_done(with_es);
                }
            }));
        }
        Tracker {
            set: set.clone(),
            state,
            tasks,
        }
    }

    pub fn with<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Waits until `pred` holds (checked every 20 ms) or `timeout` passes; returns whether it held.
    pub async fn wait(&self, timeout: Duration, pred: impl Fn(&State) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.with(&pred) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the watches have listed (so nothing the operator does is missed).
    pub async fn wait_listed(&self, timeout: Duration) -> bool {
        self.wait(timeout, |s| s.listed >= s.watches).await
    }

    /// Waits until every ExternalSecret is Ready and every Secret right.
    pub async fn wait_complete(&self, timeout: Duration) -> bool {
        self.wait(timeout, State::complete).await
    }

    /// Waits until every Secret is right (direct writes).
    pub async fn wait_secrets(&self, timeout: Duration) -> bool {
        self.wait(timeout, |s| s.secrets_ok == s.items.len()).await
    }

    /// Starts counting a refresh wave: an ExternalSecret has refreshed once its `refreshTime` is later than now.
    pub fn begin_wave(&self) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for it in &mut g.items {
            it.wave_base = it.refresh;
            it.wave_done = false;
        }
        g.wave_refreshed = 0;
        g.wave_first = None;
        g.wave_last = None;
        g.wave_active = true;
        g.secret_writes = 0;
    }

    pub fn end_wave(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).wave_active = false;
    }

    /// When item `i` first became Ready.
    pub fn ready_at(&self, i: usize) -> Option<Instant> {
        self.with(|s| s.items.get(i).and_then(|it| it.ready_at))
    }

    pub fn len(&self) -> usize {
        self.set.n
    }

    pub fn is_empty(&self) -> bool {
        self.set.n == 0
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Whether `s` is complete (for callers polling a [`Tracker`]).
pub fn complete(s: &State) -> bool {
    s.complete()
}
