//! The micro-batcher behind cross-ExternalSecret batching.
//!
//! Reads of current values from every ExternalSecret using one client land here. The first read opens a
//! batch; the batch closes when it holds the service's maximum of distinct ids (20 for Secrets Manager's
//! `BatchGetSecretValue`, 10 for Parameter Store's `GetParameters`), when no new id has arrived for
//! a fifth of the window (the burst is over), or when it has been open for the window (default 50 ms), whichever comes
//! first, and is read with one call ([`FetchMany`]). Each
//! waiter gets the answer for its id; identical ids are read once, within a batch and while a batch
//! holding the id is being read. The call runs in its own
//! task, so a reconcile that is cancelled while waiting does not cancel the others' reads.
//!
//! With reads arriving together (a refresh wave, a restart, a bulk apply), the number of calls is
//! ⌈distinct ids / maximum⌉ instead of one per ExternalSecret and key.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::errors;
use crate::error::{ProviderError, Result};
use crate::value::SecretValue;

/// A batch closes when no new id arrived for a fifth of the window (10 ms by default; a lone read waits that
/// long), at least this long.
const MIN_IDLE: Duration = Duration::from_millis(1);

/// After the service refused a batch call (it needs its own IAM permission, which policies written for ESO often
/// lack), reads go one by one for a while; then batching is tried again.
#[derive(Default)]
pub(crate) struct BatchDenied(Mutex<Option<std::time::Instant>>);

impl BatchDenied {
    /// Whether batch calls are off now.
    pub(crate) fn active(&self) -> bool {
        let until = self.0.lock().unwrap_or_else(|e| e.into_inner());
        until.is_some_and(|t| std::time::Instant::now() < t)
    }

    /// Turns batch calls off for `pause`.
    pub(crate) fn trip(&self, pause: Duration) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = std::time::Instant::now().checked_add(pause);
    }
}

/// One answer per id, in the order of `ids`, from what a batch call (`call`) answered: ids the answer does not
/// mention (another spelling of the id, e.g. a partial ARN) are read one by one with `single`; when the service
/// denied the batch call itself, every id is read one by one and batch calls pause for `pause`; any other
/// failure answers every id.
pub(crate) async fn per_id<Fut>(
    ids: &[String],
    answered: Result<HashMap<String, Result<SecretValue>>>,
    denied: &BatchDenied,
    pause: Duration,
    call: &'static str,
    single: impl Fn(Vec<String>) -> Fut,
) -> Vec<Result<SecretValue>>
where
    Fut: std::future::Future<Output = Vec<Result<SecretValue>>>,
{
    match answered {
        Ok(mut answers) => {
            let missing: Vec<String> = ids.iter().filter(|id| !answers.contains_key(*id)).cloned().collect();
            for (id, r) in missing.clone().into_iter().zip(single(missing).await) {
                answers.insert(id, r);
            }
            ids.iter()
                .map(|id| {
                    answers
                        .get(id)
                        .map(errors::duplicate_result)
                        .unwrap_or_else(|| Err(ProviderError::Transport(format!("no answer for {id:?}"))))
                })
                .collect()
        }
        Err(ProviderError::AccessDenied(message)) => {
            tracing::info!(%message, call, "the batch call is not allowed; reading one by one");
            denied.trip(pause);
            single(ids.to_vec()).await
        }
        Err(e) => ids.iter().map(|id| Err(errors::for_key(&e, id))).collect(),
    }
}

/// Reads a batch of ids with as few remote calls as possible.
#[async_trait]
pub(crate) trait FetchMany: Send + Sync + 'static {
    /// One answer per id, in the order of `ids` (at most the batcher's maximum of distinct ids).
    async fn fetch_many(&self, ids: &[String]) -> Vec<Result<SecretValue>>;
}

type Waiters = Vec<oneshot::Sender<Result<SecretValue>>>;

#[derive(Default)]
struct State {
    pending: Vec<(String, Waiters)>,
    /// Ids of batches being read, with the waiters that joined after their batch closed.
    inflight: HashMap<String, Waiters>,
    /// Bumped whenever a batch is taken, so a window timer only closes the batch it opened.
    epoch: u64,
    /// When the open batch got its first and its latest id.
    opened: Option<Instant>,
    last: Option<Instant>,
}

struct Inner<F> {
    fetch: F,
    window: Duration,
    /// A batch closes when it holds this many distinct ids (at least 1).
    max: usize,
    state: Mutex<State>,
}

/// See the module docs.
pub(crate) struct Batcher<F> {
    inner: Arc<Inner<F>>,
}

impl<F: FetchMany> Batcher<F> {
    /// A batcher whose calls carry at most `max` ids (the service's limit per call).
    pub(crate) fn new(fetch: F, window: Duration, max: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                fetch,
                window,
                max: max.max(1),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The fetcher (for reads that bypass the batcher).
    pub(crate) fn fetcher(&self) -> &F {
        &self.inner.fetch
    }

    /// Reads `id` together with whatever else is read within the window.
    pub(crate) async fn get(&self, id: String) -> Result<SecretValue> {
        let (tx, rx) = oneshot::channel();
        let (full, timer) = {
            let mut st = self.inner.lock();
            if let Some(waiters) = st.inflight.get_mut(&id) {
                waiters.push(tx);
                (None, None)
            } else if let Some((_, waiters)) = st.pending.iter_mut().find(|(i, _)| *i == id) {
                waiters.push(tx);
                (None, None)
            } else {
                st.pending.push((id, vec![tx]));
                let now = Instant::now();
                st.last = Some(now);
                if st.pending.len() == 1 {
                    st.opened = Some(now);
                }
                if st.pending.len() >= self.inner.max {
                    (Some(st.take()), None)
                } else if st.pending.len() == 1 {
                    (None, Some(st.epoch))
                } else {
                    (None, None)
                }
            }
        };
        if let Some(batch) = full {
            tokio::spawn(run(self.inner.clone(), batch));
        }
        if let Some(epoch) = timer {
            let inner = self.inner.clone();
            tokio::spawn(async move {
                let idle = (inner.window / 5).max(MIN_IDLE).min(inner.window);
                loop {
                    let deadline = {
                        let st = inner.lock();
                        match (st.epoch == epoch, st.opened, st.last) {
                            (true, Some(opened), Some(last)) => (last + idle).min(opened + inner.window),
                            _ => return,
                        }
                    };
                    tokio::time::sleep_until(deadline).await;
                    let batch = {
                        let mut st = inner.lock();
                        let now = Instant::now();
                        match (st.epoch == epoch, st.opened, st.last) {
                            (true, Some(opened), Some(last)) if !st.pending.is_empty() => {
                                (now >= last + idle || now >= opened + inner.window).then(|| st.take())
                            }
                            _ => return,
                        }
                    };
                    if let Some(batch) = batch {
                        run(inner, batch).await;
                        return;
                    }
                }
            });
        }
        rx.await
            .unwrap_or_else(|_| Err(ProviderError::Transport("a batched read was abandoned".into())))
    }
}

impl State {
    /// Closes the open batch: its ids become in flight.
    fn take(&mut self) -> Vec<(String, Waiters)> {
        self.epoch += 1;
        self.opened = None;
        self.last = None;
        let batch = std::mem::take(&mut self.pending);
        for (id, _) in &batch {
            self.inflight.insert(id.clone(), Vec::new());
        }
        batch
    }
}

impl<F> Inner<F> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Only plain pushes and takes happen under this lock: a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn run<F: FetchMany>(inner: Arc<Inner<F>>, batch: Vec<(String, Waiters)>) {
    let ids: Vec<String> = batch.iter().map(|(id, _)| id.clone()).collect();
    let mut results = inner.fetch.fetch_many(&ids).await.into_iter();
    let batch: Vec<(String, Waiters)> = {
        let mut st = inner.lock();
        batch
            .into_iter()
            .map(|(id, mut waiters)| {
                waiters.extend(st.inflight.remove(&id).unwrap_or_default());
                (id, waiters)
            })
            .collect()
    };
    for (id, waiters) in batch {
        let result = results
            .next()
            .unwrap_or_else(|| Err(ProviderError::Transport(format!("no answer for {id:?} in the batch"))));
        for w in waiters {
            let r = match &result {
                Ok(v) => Ok(v.clone()),
                Err(e) => Err(errors::for_key(e, &id)),
            };
            let _ = w.send(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers `value-of-<id>`, or NotFound for ids starting with `missing`; records each batch.
    struct Recorder(Arc<Mutex<Vec<Vec<String>>>>);

    #[async_trait]
    impl FetchMany for Recorder {
        async fn fetch_many(&self, ids: &[String]) -> Vec<Result<SecretValue>> {
            self.0.lock().unwrap().push(ids.to_vec());
            tokio::time::sleep(Duration::from_millis(5)).await;
            ids.iter()
                .map(|id| {
                    if id.starts_with("missing") {
                        Err(ProviderError::NotFound { key: id.clone() })
                    } else {
                        Ok(SecretValue::from(format!("value-of-{id}")))
                    }
                })
                .collect()
        }
    }

    #[tokio::test]
    async fn concurrent_reads_share_batches_of_twenty() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let b = Batcher::new(Recorder(calls.clone()), Duration::from_millis(20), 20);
        // 100 readers over 60 distinct ids, 3 of them missing.
        let ids: Vec<String> = (0..100)
            .map(|i| {
                let k = i % 60;
                if k < 3 {
                    format!("missing-{k}")
                } else {
                    format!("key-{k}")
                }
            })
            .collect();
        let reads: Vec<_> = ids.iter().map(|id| b.get(id.clone())).collect();
        let got = futures::future::join_all(reads).await;
        for (id, r) in ids.iter().zip(got) {
            match r {
                Ok(v) => assert_eq!(v.as_str(), Some(format!("value-of-{id}").as_str())),
                Err(e) => assert!(
                    matches!(e, ProviderError::NotFound { ref key } if key == id),
                    "{id}: {e}"
                ),
            }
        }
        let calls = calls.lock().unwrap();
        assert_eq!(calls.len(), 3, "⌈60/20⌉ calls: {calls:?}");
        assert!(calls.iter().all(|c| c.len() == 20));
        let mut all: Vec<&String> = calls.iter().flatten().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 60, "each id read once");
    }

    #[tokio::test]
    async fn batches_close_at_the_services_maximum() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let b = Batcher::new(Recorder(calls.clone()), Duration::from_millis(20), 10);
        let reads: Vec<_> = (0..50).map(|i| b.get(format!("p{i}"))).collect();
        for r in futures::future::join_all(reads).await {
            r.unwrap();
        }
        let calls = calls.lock().unwrap();
        assert_eq!(calls.len(), 5, "⌈50/10⌉ calls: {calls:?}");
        assert!(calls.iter().all(|c| c.len() == 10));
    }

    #[tokio::test]
    async fn a_lone_read_waits_only_for_the_window() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let b = Batcher::new(Recorder(calls.clone()), Duration::from_millis(10), 20);
        let start = std::time::Instant::now();
        assert_eq!(b.get("a".into()).await.unwrap().as_str(), Some("value-of-a"));
        assert!(start.elapsed() < Duration::from_secs(1));
        // Reads after the window start a new batch.
        let (x, y) = tokio::join!(b.get("b".into()), b.get("c".into()));
        assert!(x.is_ok() && y.is_ok());
        assert_eq!(
            *calls.lock().unwrap(),
            vec![vec!["a".to_string()], vec!["b".into(), "c".into()]]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_stays_one_batch_while_reads_keep_coming() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let b = Arc::new(Batcher::new(Recorder(calls.clone()), Duration::from_millis(50), 20));
        // 10 reads 3 ms apart (less than the 10 ms idle gap): one batch, although it spans 27 ms.
        let mut reads = Vec::new();
        for i in 0..10 {
            let b = b.clone();
            reads.push(tokio::spawn(async move { b.get(format!("k{i}")).await }));
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        for r in reads {
            r.await.unwrap().unwrap();
        }
        assert_eq!(calls.lock().unwrap().len(), 1);
        // Reads 12 ms apart (more than the 10 ms idle gap): each closes on its own.
        for i in 0..3 {
            b.get(format!("x{i}")).await.unwrap();
            tokio::time::sleep(Duration::from_millis(12)).await;
        }
        assert_eq!(calls.lock().unwrap().len(), 4);
        // A steady trickle is cut at the window (50 ms).
        let mut reads = Vec::new();
        for i in 0..19 {
            let b = b.clone();
            reads.push(tokio::spawn(async move { b.get(format!("t{i}")).await }));
            tokio::time::sleep(Duration::from_millis(4)).await;
        }
        for r in reads {
            r.await.unwrap().unwrap();
        }
        let sizes: Vec<usize> = calls.lock().unwrap()[4..].iter().map(Vec::len).collect();
        assert_eq!(sizes.len(), 2, "{sizes:?}");
        assert!(sizes[0] >= 12 && sizes[0] <= 14, "{sizes:?}");
    }

    #[tokio::test]
    async fn a_cancelled_reader_does_not_cancel_the_batch() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let b = Arc::new(Batcher::new(Recorder(calls.clone()), Duration::from_millis(20), 20));
        let b2 = b.clone();
        let cancelled = tokio::spawn(async move { b2.get("x".into()).await });
        tokio::time::sleep(Duration::from_millis(2)).await;
        cancelled.abort();
        assert_eq!(b.get("y".into()).await.unwrap().as_str(), Some("value-of-y"));
        assert_eq!(calls.lock().unwrap().len(), 1);
    }
}
