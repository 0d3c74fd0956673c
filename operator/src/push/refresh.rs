//! When a PushSecret is pushed again: ESO's `shouldRefresh` (spec or metadata changed, or `refreshInterval`
//! elapsed; `0` pushes once), plus syncret's own triggers decided by the controller (the source Secret changed, or
//! the last push failed). Pure (time is passed in).
use std::time::Duration;

use chrono::{DateTime, Utc};
use syncret_crds::condition::push_reason;
use syncret_crds::pushsecret::PushSecret;

use crate::sync::refresh;

/// `status.syncedResourceVersion` the PushSecret has now: generation plus a hash of labels and annotations.
pub fn resource_version(ps: &PushSecret) -> String {
    refresh::meta_resource_version(&ps.metadata)
}

/// The refresh interval (an unparseable one is a validation error elsewhere; 1h here).
pub fn interval(ps: &PushSecret) -> Duration {
    ps.spec.refresh_interval().unwrap_or(Duration::from_secs(3600))
}

fn refresh_time(ps: &PushSecret) -> Option<DateTime<Utc>> {
    ps.status
        .as_ref()
        .and_then(|s| s.refresh_time.as_ref())
        .and_then(refresh::from_time)
}

fn synced_rv(ps: &PushSecret) -> &str {
    ps.status
        .as_ref()
        .map(|s| s.synced_resource_version.as_str())
        .unwrap_or_default()
}

/// ESO's `shouldRefresh`.
pub fn should_refresh(ps: &PushSecret, now: DateTime<Utc>) -> bool {
    if synced_rv(ps) != resource_version(ps) {
        return true;
    }
    let every = interval(ps);
    if every.is_zero() {
        return synced_rv(ps).is_empty();
    }
    match refresh_time(ps) {
        None => true,
        Some(at) => at + chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX) < now,
    }
}

/// The `Ready` condition's status and reason, if any.
fn ready(ps: &PushSecret) -> Option<(bool, &str)> {
    ps.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.is_true(), c.reason.as_deref().unwrap_or_default()))
}

/// Whether the last attempt failed (so it is retried even when no refresh is due). A PushSecret whose source
/// was deleted and cleaned up (`SourceDeleted`) waits for the Secret to come back instead.
pub fn failed_last_time(ps: &PushSecret) -> bool {
    matches!(ready(ps), Some((false, reason)) if reason != push_reason::SOURCE_DELETED)
}

/// How long until the next periodic push is due, from the last one; `None` with `refreshInterval: 0`.
pub fn next_check(ps: &PushSecret, now: DateTime<Utc>) -> Option<Duration> {
    let every = interval(ps);
    if every.is_zero() {
        return None;
    }
    let Some(at) = refresh_time(ps) else { return Some(every) };
    let since = (now - at).to_std().unwrap_or_default();
    // ESO adds 5s so the check lands after the interval, not just before it.
    Some(every.saturating_sub(since) + Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ps(yaml: &str) -> PushSecret {
        serde_yaml::from_str(yaml).unwrap()
    }

    const BASE: &str =
        "apiVersion: external-secrets.io/v1alpha1\nkind: PushSecret\nmetadata: {name: p, generation: 2}\n";

    #[test]
    fn eso_should_refresh() {
        let now = Utc::now();
        let fresh = ps(&format!(
            "{BASE}spec: {{refreshInterval: 1h, secretStoreRefs: [], selector: {{secret: {{name: s}}}}}}\n"
        ));
        assert!(should_refresh(&fresh, now), "never synced");
        let mut synced = fresh.clone();
        synced.status = Some(syncret_crds::pushsecret::PushSecretStatus {
            refresh_time: Some(refresh::to_time(now - chrono::Duration::minutes(10))),
            synced_resource_version: resource_version(&fresh),
            ..Default::default()
        });
        assert!(!should_refresh(&synced, now));
        assert!(should_refresh(&synced, now + chrono::Duration::minutes(51)));
        let left = next_check(&synced, now).unwrap();
        assert!(
            left > Duration::from_secs(49 * 60) && left <= Duration::from_secs(50 * 60 + 5),
            "{left:?}"
        );
        let mut relabelled = synced.clone();
        relabelled.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
        assert!(should_refresh(&relabelled, now), "metadata change");
        let mut once = synced.clone();
        once.spec.refresh_interval = "0".into();
        once.status.as_mut().unwrap().synced_resource_version = resource_version(&once);
        assert!(!should_refresh(&once, now + chrono::Duration::days(30)));
        assert_eq!(next_check(&once, now), None);
    }

    #[test]
    fn failures_are_retried_but_source_deleted_waits() {
        let mut p = ps(&format!(
            "{BASE}spec: {{secretStoreRefs: [], selector: {{secret: {{name: s}}}}}}\n"
        ));
        assert!(!failed_last_time(&p));
        let cond = |reason: &str, ok: bool| syncret_crds::condition::Condition {
            type_: "Ready".to_string(),
            status: if ok { "True" } else { "False" }.into(),
            reason: Some(reason.into()),
            message: None,
            last_transition_time: None,
        };
        p.status = Some(Default::default());
        p.status.as_mut().unwrap().conditions = vec![cond("Errored", false)];
        assert!(failed_last_time(&p));
        p.status.as_mut().unwrap().conditions = vec![cond("SourceDeleted", false)];
        assert!(!failed_last_time(&p));
        p.status.as_mut().unwrap().conditions = vec![cond("Synced", true)];
        assert!(!failed_last_time(&p));
    }
}
