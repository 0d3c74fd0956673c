//! When an ExternalSecret must be synced again: ESO's `shouldRefresh` and `getRequeueResult`, plus
//! `syncWindows`. Pure (time is passed in).
use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::ResourceExt;
use syncret_crds::externalsecret::{
    ExternalSecret, ExternalSecretCreationPolicy, ExternalSecretRefreshPolicy, ExternalSecretSyncWindowKind,
};

use super::hash;
use crate::schedule::cron::Schedule;

/// kubectl's copy of the whole object (`kubectl apply`), which ESO's `syncedResourceVersion` hashes with the other
/// annotations.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Where the watches keep the `syncedResourceVersion` ESO computes for an object whose [`LAST_APPLIED`] copy they
/// drop to save memory (see [`drop_last_applied`]). Never copied to a Secret.
pub const RESOURCE_VERSION_MEMO: &str = "syncret.dev/synced-resource-version";

/// Drops kubectl's [`LAST_APPLIED`] copy from `meta`, keeping what ESO's `syncedResourceVersion` makes of it in
/// [`RESOURCE_VERSION_MEMO`]: without it, every ExternalSecret or PushSecret created by `kubectl apply` would look
/// changed after a move from ESO (and to ESO after a move back), and be read and written again. Idempotent.
pub fn drop_last_applied(meta: &mut ObjectMeta) {
    let Some(annotations) = meta.annotations.as_mut() else {
        return;
    };
    if annotations.contains_key(LAST_APPLIED) {
        annotations.remove(RESOURCE_VERSION_MEMO);
        let empty = BTreeMap::new();
        let memo = hash::synced_resource_version(
            meta.generation.unwrap_or_default(),
            meta.labels.as_ref().unwrap_or(&empty),
            annotations,
        );
        annotations.remove(LAST_APPLIED);
        annotations.insert(RESOURCE_VERSION_MEMO.to_string(), memo);
    }
    if annotations.is_empty() {
        meta.annotations = None;
    }
}

/// ESO's `ctrlutil.GetResourceVersion`: generation plus a hash of labels and annotations (the memo of
/// [`drop_last_applied`] when there is one).
pub fn meta_resource_version(meta: &ObjectMeta) -> String {
    if let Some(memo) = meta.annotations.as_ref().and_then(|a| a.get(RESOURCE_VERSION_MEMO)) {
        return memo.clone();
    }
    let empty = BTreeMap::new();
    hash::synced_resource_version(
        meta.generation.unwrap_or_default(),
        meta.labels.as_ref().unwrap_or(&empty),
        meta.annotations.as_ref().unwrap_or(&empty),
    )
}

/// `status.syncedResourceVersion` the ExternalSecret has now: generation plus a hash of labels and annotations.
pub fn resource_version(es: &ExternalSecret) -> String {
    meta_resource_version(&es.metadata)
}

fn refresh_time(es: &ExternalSecret) -> Option<DateTime<Utc>> {
    es.status
        .as_ref()
        .and_then(|s| s.refresh_time.as_ref())
        .and_then(from_time)
}

/// A Kubernetes timestamp as a chrono time.
pub fn from_time(t: &Time) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.0.as_second(), u32::try_from(t.0.subsec_nanosecond()).unwrap_or(0))
}

/// A chrono time as a Kubernetes timestamp (whole seconds, as the API stores them).
pub fn to_time(t: DateTime<Utc>) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(t.timestamp()).unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH))
}

fn synced_rv(es: &ExternalSecret) -> &str {
    es.status
        .as_ref()
        .map(|s| s.synced_resource_version.as_str())
        .unwrap_or_default()
}

/// The effective refresh interval (an unparseable one is a validation error elsewhere; treated as 1h here).
pub fn interval(es: &ExternalSecret) -> Duration {
    es.spec.refresh_interval().unwrap_or(Duration::from_secs(3600))
}

/// Whether the provider must be read now (ESO's `shouldRefresh`).
pub fn should_refresh(es: &ExternalSecret, now: DateTime<Utc>) -> bool {
    let never_synced = synced_rv(es).is_empty() || refresh_time(es).is_none();
    match es.spec.refresh_policy() {
        ExternalSecretRefreshPolicy::CreatedOnce => never_synced,
        ExternalSecretRefreshPolicy::OnChange => never_synced || synced_rv(es) != resource_version(es),
        ExternalSecretRefreshPolicy::Periodic => {
            let interval = interval(es);
            if interval.is_zero() && !synced_rv(es).is_empty() {
                return false;
            }
            if synced_rv(es) != resource_version(es) {
                return true;
            }
            let Some(last) = refresh_time(es) else { return true };
            if last > now {
                return true;
            }
            let Ok(iv) = chrono::Duration::from_std(interval) else {
                return false;
            };
            if last + iv >= now {
                return false;
            }
            periodic_allowed_by_windows(es, now)
        }
    }
}

/// ESO's `isPeriodicRefreshAllowedByWindows`: unparseable windows count as inactive.
pub fn periodic_allowed_by_windows(es: &ExternalSecret, now: DateTime<Utc>) -> bool {
    let Some(sw) = &es.spec.sync_windows else { return true };
    if sw.windows.is_empty() {
        return true;
    }
    let active = sw.windows.iter().any(|w| {
        let (Ok(schedule), Ok(duration)) = (Schedule::parse(&w.schedule), w.duration()) else {
            return false;
        };
        schedule.is_within(duration, now)
    });
    match sw.kind {
        ExternalSecretSyncWindowKind::Deny => !active,
        ExternalSecretSyncWindowKind::Allow => active,
    }
}

/// When to look at the ExternalSecret again after a successful sync (before jitter); `None`: only on change.
/// For `syncWindows` that block the due refresh, the next check is a minute later (windows are minute-grained).
pub fn next_check(es: &ExternalSecret, now: DateTime<Utc>) -> Option<Duration> {
    if es.spec.refresh_policy() != ExternalSecretRefreshPolicy::Periodic {
        return None;
    }
    let interval = interval(es);
    if interval.is_zero() {
        return None;
    }
    let Some(last) = refresh_time(es) else {
        return Some(interval);
    };
    let elapsed = (now - last).to_std().unwrap_or(Duration::ZERO);
    if elapsed < interval {
        return Some(interval - elapsed);
    }
    if periodic_allowed_by_windows(es, now) {
        Some(Duration::ZERO)
    } else {
        Some(Duration::from_secs(60))
    }
}

/// Whether anything about the ExternalSecret changed since its last sync (spec, labels, annotations).
pub fn changed_since_sync(es: &ExternalSecret) -> bool {
    synced_rv(es) != resource_version(es)
}

/// What happened since the ExternalSecret's last sync that the ExternalSecret itself does not show (the shell
/// knows these from the Secret index and the per-ExternalSecret state).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Since {
    /// Its `target.name` changed.
    pub target_changed: bool,
    /// A leased value it read is due for re-reading.
    pub lease_due: bool,
    /// A store it reads from changed its spec (uid or generation).
    pub store_changed: bool,
    /// A ConfigMap or Secret its `templateFrom` reads changed (ESO #1430).
    pub sources_changed: bool,
}

/// Whether to read the provider now, or only to check that the Secret is still intact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refresh {
    /// Read the provider, render and write.
    Fetch,
    /// Nothing is due: keep the Secret if it is intact (`assume_intact`: the policy never writes or owns it, so
    /// there is nothing to check), and look again after `next`.
    KeepIfIntact {
        assume_intact: bool,
        next: Option<Duration>,
    },
}

/// The refresh decision of one reconcile: ESO's `shouldRefresh`, plus the reasons to read again that ESO lacks
/// (a renamed target, a due lease, a changed store spec, a changed template source: the last two only for
/// periodic refreshes, which would pick them up at their next refresh anyway; `CreatedOnce`, `OnChange` and "sync
/// once" keep what they synced). `lease_wait`: how long until a pending lease is due.
pub fn decide(es: &ExternalSecret, now: DateTime<Utc>, since: Since, lease_wait: Option<Duration>) -> Refresh {
    let periodic = es.spec.refresh_policy() == ExternalSecretRefreshPolicy::Periodic && !interval(es).is_zero();
    let inputs_changed = since.store_changed || since.sources_changed;
    if should_refresh(es, now) || since.target_changed || since.lease_due || (periodic && inputs_changed) {
        return Refresh::Fetch;
    }
    let assume_intact = matches!(
        es.spec.target.creation_policy,
        ExternalSecretCreationPolicy::Orphan | ExternalSecretCreationPolicy::None
    );
    Refresh::KeepIfIntact {
        assume_intact,
        next: earliest(next_check(es, now), lease_wait),
    }
}

/// After a successful sync whose values carry a lease (Vault dynamic secrets, KV with ttl): re-read at two
/// thirds of the lease. Returns the next look (the sooner of the refresh and the lease) and how soon the lease
/// counts as due (a little before that look, which refresh jitter may bring forward by up to 10%).
pub fn after_sync(next: Option<Duration>, lease: Option<Duration>) -> (Option<Duration>, Option<Duration>) {
    let Some(lease) = lease else { return (next, None) };
    let early = lease.mul_f64(2.0 / 3.0).max(Duration::from_secs(1));
    (earliest(next, Some(early)), Some(early.mul_f64(0.85)))
}

/// The sooner of two optional waits.
pub fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `namespace/name` for logs and keys.
pub fn key_of(es: &ExternalSecret) -> String {
    format!("{}/{}", es.namespace().unwrap_or_default(), es.name_any())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn es(extra_spec: &str) -> ExternalSecret {
        serde_yaml::from_str(&format!(
            r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {{name: db, namespace: app, generation: 2, annotations: {{a: b}}}}
spec:
  secretStoreRef: {{name: s}}
{extra_spec}
"#
        ))
        .unwrap()
    }

    fn synced(mut e: ExternalSecret, at: DateTime<Utc>) -> ExternalSecret {
        let rv = resource_version(&e);
        let status = e.status.get_or_insert_default();
        status.refresh_time = Some(to_time(at));
        status.synced_resource_version = rv;
        e
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn periodic() {
        let now = t("2026-01-01T12:00:00Z");
        let e = es("  refreshInterval: 1h");
        assert!(should_refresh(&e, now), "never synced");
        let e = synced(e, t("2026-01-01T11:30:00Z"));
        assert!(!should_refresh(&e, now));
        assert_eq!(next_check(&e, now), Some(Duration::from_secs(1800)));
        assert!(should_refresh(&e, t("2026-01-01T12:30:01Z")));
        let mut forced = e.clone();
        forced
            .metadata
            .annotations
            .get_or_insert_default()
            .insert("force-sync".into(), "1".into());
        assert!(should_refresh(&forced, now), "any annotation change forces a sync");
    }

    #[test]
    fn zero_interval_created_once_and_on_change() {
        let now = t("2026-01-01T12:00:00Z");
        let e = synced(es("  refreshInterval: 0s"), t("2020-01-01T00:00:00Z"));
        assert!(!should_refresh(&e, now));
        assert_eq!(next_check(&e, now), None);
        let e = synced(es("  refreshPolicy: CreatedOnce"), t("2020-01-01T00:00:00Z"));
        assert!(!should_refresh(&e, now));
        let mut changed = e.clone();
        changed.metadata.generation = Some(3);
        assert!(!should_refresh(&changed, now), "CreatedOnce ignores changes");
        let e = synced(es("  refreshPolicy: OnChange"), t("2020-01-01T00:00:00Z"));
        assert!(!should_refresh(&e, now));
        let mut changed = e.clone();
        changed.metadata.generation = Some(3);
        assert!(should_refresh(&changed, now));
    }

    #[test]
    fn sync_windows_block_periodic_refresh() {
        let e = synced(
            es(
                "  refreshInterval: 1m\n  syncWindows:\n    kind: deny\n    windows:\n    - {schedule: \"0 9 * * *\", duration: 8h}",
            ),
            t("2026-01-01T00:00:00Z"),
        );
        assert!(!should_refresh(&e, t("2026-01-01T10:00:00Z")), "inside the deny window");
        assert_eq!(next_check(&e, t("2026-01-01T10:00:00Z")), Some(Duration::from_secs(60)));
        assert!(should_refresh(&e, t("2026-01-01T18:00:01Z")));
    }

    #[test]
    fn decide_reads_when_due_or_when_something_changed_behind_the_es() {
        let now = t("2026-01-01T12:00:00Z");
        let e = synced(es("  refreshInterval: 1h"), t("2026-01-01T11:30:00Z"));
        let half_hour = Some(Duration::from_secs(1800));
        assert_eq!(
            decide(&e, now, Since::default(), None),
            Refresh::KeepIfIntact {
                assume_intact: false,
                next: half_hour
            }
        );
        for since in [
            Since {
                target_changed: true,
                ..Since::default()
            },
            Since {
                lease_due: true,
                ..Since::default()
            },
            Since {
                store_changed: true,
                ..Since::default()
            },
            Since {
                sources_changed: true,
                ..Since::default()
            },
        ] {
            assert_eq!(decide(&e, now, since, None), Refresh::Fetch, "{since:?}");
        }
        assert_eq!(
            decide(&es("  refreshInterval: 1h"), now, Since::default(), None),
            Refresh::Fetch
        );
        // A pending lease is looked at when it is due, if sooner.
        assert_eq!(
            decide(&e, now, Since::default(), Some(Duration::from_secs(60))),
            Refresh::KeepIfIntact {
                assume_intact: false,
                next: Some(Duration::from_secs(60))
            }
        );
        // A store change does not re-read what CreatedOnce synced; Orphan has nothing to check.
        let once = synced(
            es("  refreshPolicy: CreatedOnce
  target: {creationPolicy: Orphan}"),
            t("2020-01-01T00:00:00Z"),
        );
        let store_changed = Since {
            store_changed: true,
            ..Since::default()
        };
        assert_eq!(
            decide(&once, now, store_changed, None),
            Refresh::KeepIfIntact {
                assume_intact: true,
                next: None
            }
        );
        // Nor does a changed template source: only periodic refreshes pick it up early.
        let sources_changed = Since {
            sources_changed: true,
            ..Since::default()
        };
        for policy in [
            "  refreshPolicy: CreatedOnce",
            "  refreshPolicy: OnChange",
            "  refreshInterval: 0s",
        ] {
            let e = synced(es(policy), t("2026-01-01T11:30:00Z"));
            assert!(
                matches!(decide(&e, now, sources_changed, None), Refresh::KeepIfIntact { .. }),
                "{policy}"
            );
        }
    }

    #[test]
    fn leases_are_read_again_at_two_thirds() {
        let h = Some(Duration::from_secs(3600));
        assert_eq!(after_sync(h, None), (h, None));
        let (next, due) = after_sync(h, Some(Duration::from_secs(90)));
        assert_eq!(next, Some(Duration::from_secs(60)));
        assert_eq!(due, Some(Duration::from_secs(51)));
        assert_eq!(after_sync(None, Some(Duration::ZERO)).0, Some(Duration::from_secs(1)));
        assert_eq!(earliest(None, None), None);
        assert_eq!(
            earliest(Some(Duration::from_secs(2)), None),
            Some(Duration::from_secs(2))
        );
    }

    /// An ExternalSecret created by `kubectl apply` keeps ESO's `syncedResourceVersion` when kubectl's copy is
    /// dropped from memory, so a status ESO wrote still matches after a move (and ours matches ESO's after a move
    /// back).
    #[test]
    fn resource_version_survives_dropping_kubectls_copy() {
        let mut es: ExternalSecret = serde_yaml::from_str(
            "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata:\n  name: db\n  generation: 3\n  labels: {app: web}\n  annotations: {kubectl.kubernetes.io/last-applied-configuration: '{\"kind\":\"ExternalSecret\"}', team: a}\nspec: {}\n",
        )
        .unwrap();
        let eso = resource_version(&es);
        let labels: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        let annotations: BTreeMap<String, String> = [
            (LAST_APPLIED.to_string(), r#"{"kind":"ExternalSecret"}"#.to_string()),
            ("team".to_string(), "a".to_string()),
        ]
        .into();
        assert_eq!(eso, hash::synced_resource_version(3, &labels, &annotations));
        drop_last_applied(&mut es.metadata);
        assert!(!es.annotations().contains_key(LAST_APPLIED));
        assert_eq!(resource_version(&es), eso);
        drop_last_applied(&mut es.metadata);
        assert_eq!(resource_version(&es), eso, "idempotent");
        // Without kubectl's copy nothing is added.
        let mut plain = es.clone();
        plain.metadata.annotations = Some([("team".to_string(), "a".to_string())].into());
        let before = resource_version(&plain);
        drop_last_applied(&mut plain.metadata);
        assert_eq!(plain.metadata.annotations.as_ref().unwrap().len(), 1);
        assert_eq!(resource_version(&plain), before);
    }
}
