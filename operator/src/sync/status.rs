//! The ExternalSecret status a sync ends with (ESO's `Ready` condition rules). Pure: time is passed in.
use chrono::{DateTime, Utc};
use syncret_crds::condition::{ExternalSecretConditionType, ExternalSecretStatusCondition};
use syncret_crds::externalsecret::{ExternalSecret, ExternalSecretStatus, LocalObjectReference};

use super::refresh;

/// The `Ready` condition; `lastTransitionTime` changes only when the status does (ESO's
/// `SetExternalSecretCondition`).
pub fn ready_condition(
    old: Option<&ExternalSecretStatus>,
    ready: bool,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
) -> ExternalSecretStatusCondition {
    let prev = old.and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == ExternalSecretConditionType::Ready)
    });
    let status = if ready { "True" } else { "False" };
    let ltt = match prev {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => None,
    }
    .unwrap_or_else(|| refresh::to_time(now));
    ExternalSecretStatusCondition {
        type_: ExternalSecretConditionType::Ready,
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_transition_time: Some(ltt),
    }
}

/// After a successful sync into `target`: refreshed now, at the ExternalSecret's current resource version, Ready;
/// other condition types are kept as they are. `binding` names the target Secret (none for a generic target, as
/// in ESO).
pub fn synced(
    es: &ExternalSecret,
    binding: Option<&str>,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
) -> ExternalSecretStatus {
    let old = es.status.as_ref();
    let mut status = ExternalSecretStatus {
        refresh_time: Some(refresh::to_time(now)),
        synced_resource_version: refresh::resource_version(es),
        conditions: vec![ready_condition(old, true, reason, message, now)],
        binding: binding.map(|name| LocalObjectReference { name: name.to_string() }),
    };
    status.conditions.extend(
        old.into_iter()
            .flat_map(|s| s.conditions.iter())
            .filter(|c| c.type_ != ExternalSecretConditionType::Ready)
            .cloned(),
    );
    status
}

/// After a failed sync: `Ready=False` first, the rest of the status as it was (the last sync's refresh time and
/// binding stay: the Secret they describe is left intact).
pub fn failed(
    old: Option<&ExternalSecretStatus>,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
) -> ExternalSecretStatus {
    let mut status = old.cloned().unwrap_or_default();
    let cond = ready_condition(old, false, reason, message, now);
    status
        .conditions
        .retain(|c| c.type_ != ExternalSecretConditionType::Ready);
    status.conditions.insert(0, cond);
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn es(status: &str) -> ExternalSecret {
        serde_yaml::from_str(&format!(
            "metadata: {{name: db, namespace: app, generation: 3}}\nspec: {{target: {{name: db}}, data: []}}\n{status}"
        ))
        .unwrap()
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).unwrap()
    }

    #[test]
    fn a_sync_keeps_the_transition_time_while_ready_and_other_conditions() {
        let e = es(
            "status:\n  conditions:\n  - {type: Ready, status: 'True', reason: SecretSynced, lastTransitionTime: '2026-01-01T00:00:00Z'}\n  - {type: Deleted, status: 'False'}\n",
        );
        let s = synced(&e, Some("db"), "SecretSynced", "secret synced", at(1_800_000_000));
        assert_eq!(s.conditions.len(), 2);
        assert_eq!(s.conditions[0].status, "True");
        assert_eq!(
            s.conditions[0].last_transition_time.as_ref().unwrap().0.to_string(),
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(s.synced_resource_version, refresh::resource_version(&e));
        assert_eq!(s.binding.as_ref().unwrap().name, "db");
        assert_eq!(s.refresh_time, Some(refresh::to_time(at(1_800_000_000))));
        let generic = synced(&e, None, "ResourceSynced", "secret synced", at(1_800_000_000));
        assert_eq!(generic.binding, None);
    }

    #[test]
    fn a_failure_flips_ready_and_keeps_the_last_sync() {
        let e = es(
            "status:\n  refreshTime: '2026-01-01T00:00:00Z'\n  syncedResourceVersion: 1-abc\n  binding: {name: db}\n  conditions:\n  - {type: Deleted, status: 'False'}\n  - {type: Ready, status: 'True', reason: SecretSynced, lastTransitionTime: '2026-01-01T00:00:00Z'}\n",
        );
        let s = failed(
            e.status.as_ref(),
            "SecretSyncedError",
            "could not get secret data",
            at(1_800_000_000),
        );
        assert_eq!(s.conditions[0].type_, ExternalSecretConditionType::Ready);
        assert_eq!(s.conditions[0].status, "False");
        assert_eq!(s.conditions[0].message.as_deref(), Some("could not get secret data"));
        assert_eq!(
            s.conditions[0].last_transition_time,
            Some(refresh::to_time(at(1_800_000_000)))
        );
        assert_eq!(s.conditions.len(), 2);
        assert_eq!(s.synced_resource_version, "1-abc");
        assert_eq!(s.binding.as_ref().unwrap().name, "db");
        let again = failed(Some(&s), "SecretSyncedError", "still failing", at(1_800_000_100));
        assert_eq!(
            again.conditions[0].last_transition_time,
            s.conditions[0].last_transition_time
        );
    }
}
