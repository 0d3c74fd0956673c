//! The PushSecret status a reconcile ends with, and what its `syncedPushSecrets` become. Pure.
use chrono::{DateTime, Utc};
use syncret_crds::condition::PushSecretStatusCondition;
use syncret_crds::pushsecret::{PushSecretStatus, SyncedPushSecretsMap};

/// Sets the `Ready` condition; `lastTransitionTime` changes only with the status (ESO's
/// `SetPushSecretCondition`).
pub fn set_ready(status: &mut PushSecretStatus, ready: bool, reason: &str, message: &str, now: DateTime<Utc>) {
    let text = if ready { "True" } else { "False" };
    let prev = status.conditions.iter().find(|c| c.type_ == "Ready");
    let ltt = match prev {
        Some(p) if p.status == text => p.last_transition_time.clone(),
        _ => None,
    }
    .unwrap_or_else(|| crate::sync::refresh::to_time(now));
    status.conditions.retain(|c| c.type_ != "Ready");
    status.conditions.push(PushSecretStatusCondition {
        type_: "Ready".into(),
        status: text.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_transition_time: Some(ltt),
    });
}

/// What `old` recorded and `now` no longer pushes: to be deleted (with `deletionPolicy: Delete`).
pub fn stale(old: &SyncedPushSecretsMap, now: &SyncedPushSecretsMap) -> SyncedPushSecretsMap {
    let mut out = SyncedPushSecretsMap::new();
    for (s, m) in old {
        for (r, d) in m {
            if !now.get(s).is_some_and(|n| n.contains_key(r)) {
                out.entry(s.clone()).or_default().insert(r.clone(), d.clone());
            }
        }
    }
    out
}

/// `base` with `more` added (a partial push, or what is left to delete, is recorded on top of what was there).
pub fn merged(base: &SyncedPushSecretsMap, more: SyncedPushSecretsMap) -> SyncedPushSecretsMap {
    let mut out = base.clone();
    for (s, m) in more {
        out.entry(s).or_default().extend(m);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use syncret_crds::pushsecret::PushSecretData;

    fn data(remote: &str) -> PushSecretData {
        serde_json::from_value(serde_json::json!({"match": {"secretKey": "k", "remoteRef": {"remoteKey": remote}}}))
            .unwrap()
    }

    fn map(entries: &[(&str, &str)]) -> SyncedPushSecretsMap {
        let mut m = SyncedPushSecretsMap::new();
        for (store, r) in entries {
            m.entry(store.to_string()).or_default().insert(r.to_string(), data(r));
        }
        m
    }

    #[test]
    fn stale_is_what_is_no_longer_pushed_and_merged_keeps_both() {
        let old = map(&[("SecretStore/a", "x"), ("SecretStore/a", "y"), ("SecretStore/b", "z")]);
        let now = map(&[("SecretStore/a", "x")]);
        assert_eq!(
            stale(&old, &now),
            map(&[("SecretStore/a", "y"), ("SecretStore/b", "z")])
        );
        assert!(stale(&now, &old).is_empty());
        let partial = map(&[("SecretStore/c", "w")]);
        assert_eq!(
            merged(&now, partial),
            map(&[("SecretStore/a", "x"), ("SecretStore/c", "w")])
        );
    }

    #[test]
    fn ready_keeps_its_transition_time_while_unchanged() {
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let t1 = DateTime::from_timestamp(1_800_000_100, 0).unwrap();
        let mut s = PushSecretStatus::default();
        set_ready(&mut s, false, "Errored", "a", t0);
        set_ready(&mut s, false, "Errored", "b", t1);
        assert_eq!(s.conditions.len(), 1);
        assert_eq!(s.conditions[0].message.as_deref(), Some("b"));
        assert_eq!(
            s.conditions[0].last_transition_time,
            Some(crate::sync::refresh::to_time(t0))
        );
        set_ready(&mut s, true, "Synced", "ok", t1);
        assert_eq!(
            s.conditions[0].last_transition_time,
            Some(crate::sync::refresh::to_time(t1))
        );
    }
}
