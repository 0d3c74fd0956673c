//! When an ExternalSecret must be synced again: ESO's `shouldRefresh` and `getRequeueResult`, plus
//! `syncWindows`. Pure (time is passed in).
use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use syncret_crds::externalsecret::{ExternalSecret, ExternalSecretRefreshPolicy, ExternalSecretSyncWindowKind};

use super::hash;
use crate::schedule::cron::Schedule;

/// `status.syncedResourceVersion` the ExternalSecret has now: generation plus a hash of labels and annotations.
pub fn resource_version(es: &ExternalSecret) -> String {
    let empty = BTreeMap::new();
    hash::synced_resource_version(
        es.metadata.generation.unwrap_or_default(),
        es.metadata.labels.as_ref().unwrap_or(&empty),
        es.metadata.annotations.as_ref().unwrap_or(&empty),
    )
}

fn refresh_time(es: &ExternalSecret) -> Option<DateTime<Utc>> {
    es.status.as_ref().and_then(|s| s.refresh_time.as_ref()).and_then(from_time)
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
    es.status.as_ref().map(|s| s.synced_resource_version.as_str()).unwrap_or_default()
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
            let Ok(iv) = chrono::Duration::from_std(interval) else { return false };
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
        let (Ok(schedule), Ok(duration)) = (Schedule::parse(&w.schedule), w.duration()) else { return false };
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
    let Some(last) = refresh_time(es) else { return Some(interval) };
    let elapsed = (now - last).to_std().unwrap_or(Duration::ZERO);
    if elapsed < interval {
        return Some(interval - elapsed);
    }
    if periodic_allowed_by_windows(es, now) { Some(Duration::ZERO) } else { Some(Duration::from_secs(60)) }
}

/// Whether anything about the ExternalSecret changed since its last sync (spec, labels, annotations).
pub fn changed_since_sync(es: &ExternalSecret) -> bool {
    synced_rv(es) != resource_version(es)
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
        forced.metadata.annotations.get_or_insert_default().insert("force-sync".into(), "1".into());
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
            es("  refreshInterval: 1m\n  syncWindows:\n    kind: deny\n    windows:\n    - {schedule: \"0 9 * * *\", duration: 8h}"),
            t("2026-01-01T00:00:00Z"),
        );
        assert!(!should_refresh(&e, t("2026-01-01T10:00:00Z")), "inside the deny window");
        assert_eq!(next_check(&e, t("2026-01-01T10:00:00Z")), Some(Duration::from_secs(60)));
        assert!(should_refresh(&e, t("2026-01-01T18:00:01Z")));
    }
}
