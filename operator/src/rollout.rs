//! Restarting workloads when a synced Secret's data changes (what ESO lacks; vals-operator and Vault Secrets
//! Operator have it). Opt-in per ExternalSecret:
//!
//! ```yaml
//! metadata:
//!   annotations:
//!     syncret.dev/rollout-on-change: "deployment/web, statefulset/db, daemonset/agent"
//!     syncret.dev/rollout-on-create: "true"   # optional: also when the Secret is first created
//! ```
//!
//! A restart is what `kubectl rollout restart` does: the pod template gets the annotation
//! `kubectl.kubernetes.io/restartedAt`. Never on a refresh that changes nothing, never on first creation unless
//! asked; workloads are in the ExternalSecret's namespace.
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::api::{Api, Patch, PatchParams};

/// Annotation listing the workloads to restart.
pub const ANNOTATION_ROLLOUT: &str = "syncret.dev/rollout-on-change";
/// Annotation asking for a restart on first creation too.
pub const ANNOTATION_ROLLOUT_ON_CREATE: &str = "syncret.dev/rollout-on-create";
/// The pod-template annotation `kubectl rollout restart` sets.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// A workload to restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Workload {
    Deployment(String),
    StatefulSet(String),
    DaemonSet(String),
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Workload::Deployment(n) => write!(f, "deployment/{n}"),
            Workload::StatefulSet(n) => write!(f, "statefulset/{n}"),
            Workload::DaemonSet(n) => write!(f, "daemonset/{n}"),
        }
    }
}

/// Parses the annotation value; the error names the bad entry.
pub fn parse(value: &str) -> Result<Vec<Workload>, String> {
    let mut out = Vec::new();
    for item in value.split([',', ' ', '\n']).map(str::trim).filter(|s| !s.is_empty()) {
        let (kind, name) = item
            .split_once('/')
            .ok_or_else(|| format!("{ANNOTATION_ROLLOUT}: {item:?} is not <kind>/<name>"))?;
        if name.is_empty() {
            return Err(format!("{ANNOTATION_ROLLOUT}: {item:?} has no name"));
        }
        let w = match kind.to_ascii_lowercase().as_str() {
            "deployment" | "deployments" | "deploy" => Workload::Deployment(name.into()),
            "statefulset" | "statefulsets" | "sts" => Workload::StatefulSet(name.into()),
            "daemonset" | "daemonsets" | "ds" => Workload::DaemonSet(name.into()),
            other => {
                return Err(format!(
                    "{ANNOTATION_ROLLOUT}: kind {other:?} is not deployment, statefulset or daemonset"
                ));
            }
        };
        out.push(w);
    }
    Ok(out)
}

/// Restarts `workloads` in `namespace` (patches their pod template). Returns the errors per workload.
pub async fn restart(
    client: &kube::Client,
    namespace: &str,
    workloads: &[Workload],
    at: &str,
) -> Vec<(Workload, String)> {
    let patch = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}});
    let pp = PatchParams::default();
    let mut errors = Vec::new();
    for w in workloads {
        let res = match w {
            Workload::Deployment(n) => Api::<Deployment>::namespaced(client.clone(), namespace)
                .patch(n, &pp, &Patch::Strategic(&patch))
                .await
                .map(|_| ()),
            Workload::StatefulSet(n) => Api::<StatefulSet>::namespaced(client.clone(), namespace)
                .patch(n, &pp, &Patch::Strategic(&patch))
                .await
                .map(|_| ()),
            Workload::DaemonSet(n) => Api::<DaemonSet>::namespaced(client.clone(), namespace)
                .patch(n, &pp, &Patch::Strategic(&patch))
                .await
                .map(|_| ()),
        };
        if let Err(e) = res {
            errors.push((w.clone(), e.to_string()));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kinds_and_rejects_garbage() {
        assert_eq!(
            parse("deployment/web, sts/db\nds/agent").unwrap(),
            vec![
                Workload::Deployment("web".into()),
                Workload::StatefulSet("db".into()),
                Workload::DaemonSet("agent".into())
            ]
        );
        assert!(parse("pod/x").unwrap_err().contains("\"pod\""));
        assert!(parse("web").is_err());
        assert!(parse("deployment/").is_err());
        assert!(parse("").unwrap().is_empty());
    }
}
