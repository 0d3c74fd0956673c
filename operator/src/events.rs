//! Kubernetes Events (`events.k8s.io/v1`) with ESO's reasons. Published from a bounded background queue so a
//! reconcile never waits on them; identical events for one object within 5 minutes are sent once (a failing
//! ExternalSecret retried with backoff does not flood the namespace). Notes are built from messages that
//! never contain secret values.
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::sync::mpsc;

use crate::schedule::RateLimiter;

const DEDUP_WINDOW: Duration = Duration::from_secs(300);
/// Events waiting to be sent; beyond this they are dropped, as client-go's event broadcaster (ESO's recorder)
/// drops beyond its `maxQueuedEvents = 1000`. Events are best-effort: a backlog after a mass create must not grow
/// the operator's memory or add apiserver load to a sync that is already limited by it.
const QUEUE: usize = 1000;

/// `Normal` or `Warning`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Normal,
    Warning,
}

struct Pending {
    regarding: ObjectReference,
    kind: Kind,
    reason: &'static str,
    note: String,
}

/// Publishes events; cheap to clone.
#[derive(Clone)]
pub struct Events {
    tx: mpsc::Sender<Pending>,
    recent: Arc<Mutex<HashMap<u64, Instant>>>,
}

impl Events {
    /// Starts the publisher task. `controller` is the reporting controller name.
    pub fn start(client: kube::Client, controller: &str, instance: String, limiter: Arc<RateLimiter>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Pending>(QUEUE);
        let controller = controller.to_string();
        tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                limiter.acquire().await;
                let ns = p.regarding.namespace.clone().unwrap_or_else(|| "default".into());
                let now = k8s_openapi::jiff::Timestamp::now();
                let ev = K8sEvent {
                    metadata: ObjectMeta {
                        name: Some(format!(
                            "{}.{:x}",
                            p.regarding.name.as_deref().unwrap_or("syncret"),
                            now.as_nanosecond()
                        )),
                        namespace: Some(ns.clone()),
                        ..Default::default()
                    },
                    event_time: Some(MicroTime(now)),
                    action: Some(p.reason.into()),
                    reason: Some(p.reason.into()),
                    note: Some(truncate(&p.note, 1024)),
                    regarding: Some(p.regarding),
                    reporting_controller: Some(controller.clone()),
                    reporting_instance: Some(instance.clone()),
                    type_: Some(match p.kind {
                        Kind::Normal => "Normal".into(),
                        Kind::Warning => "Warning".into(),
                    }),
                    ..Default::default()
                };
                let api: Api<K8sEvent> = Api::namespaced(client.clone(), &ns);
                if let Err(e) = api.create(&PostParams::default(), &ev).await {
                    tracing::debug!(error = %e, "could not publish event");
                }
            }
        });
        Self {
            tx,
            recent: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Queues an event about `regarding` (dropped if the queue is full or an identical one was sent recently).
    pub fn publish(&self, regarding: ObjectReference, kind: Kind, reason: &'static str, note: impl Into<String>) {
        let note = note.into();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (
            &regarding.uid,
            &regarding.name,
            &regarding.namespace,
            kind,
            reason,
            &note,
        )
            .hash(&mut h);
        let key = h.finish();
        {
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if recent.get(&key).is_some_and(|t| now.duration_since(*t) < DEDUP_WINDOW) {
                return;
            }
            if recent.len() >= DEDUP_ENTRIES {
                forget_oldest(&mut recent, now);
            }
            recent.insert(key, now);
        }
        let _ = self.tx.try_send(Pending {
            regarding,
            kind,
            reason,
            note,
        });
    }
}

/// How many recent events are remembered for de-duplication: client-go's event correlator keeps 4,096 too (an LRU
/// cache). Not one per object: after a mass create every ExternalSecret has a "Created" event in the window.
const DEDUP_ENTRIES: usize = 4096;

/// Makes room in the de-duplication table: drops what is older than the window, then, if that is not enough, the
/// older half; gives the memory of a table that grew in a burst back.
fn forget_oldest(recent: &mut HashMap<u64, Instant>, now: Instant) {
    recent.retain(|_, t| now.duration_since(*t) < DEDUP_WINDOW);
    if recent.len() >= DEDUP_ENTRIES / 2 {
        let mut times: Vec<Instant> = recent.values().copied().collect();
        let (_, cutoff, _) = times.select_nth_unstable(recent.len() / 2);
        let cutoff = *cutoff;
        recent.retain(|_, t| *t > cutoff);
    }
    if recent.capacity() > 4 * DEDUP_ENTRIES {
        recent.shrink_to_fit();
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dedup_table_keeps_the_newer_half_when_full() {
        let start = Instant::now();
        let mut recent: HashMap<u64, Instant> = (0..DEDUP_ENTRIES as u64)
            .map(|i| (i, start + Duration::from_millis(i)))
            .collect();
        let now = start + Duration::from_secs(10);
        forget_oldest(&mut recent, now);
        assert!(recent.len() < DEDUP_ENTRIES / 2 + 1, "{}", recent.len());
        assert!(recent.contains_key(&(DEDUP_ENTRIES as u64 - 1)), "the newest is kept");
        assert!(!recent.contains_key(&0), "the oldest is dropped");
        // Past the window everything goes.
        forget_oldest(&mut recent, now + DEDUP_WINDOW);
        assert!(recent.is_empty());
    }
}
