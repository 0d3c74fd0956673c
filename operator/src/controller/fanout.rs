//! The fan-out pass shared by ClusterExternalSecret and ClusterPushSecret: one namespaced child of one name
//! in each target namespace. Children under a previous name and children in namespaces no longer targeted
//! are deleted; the others are created or updated. Each namespace that fails is recorded with why, and the
//! others go on.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use super::kit::Next;

/// How often a fan-out is re-checked when its `refreshTime` is unset or zero. Namespace events wake it sooner.
const DEFAULT_REFRESH: Duration = Duration::from_secs(3600);

/// The children as the last status recorded them, and the name they must have now.
pub(super) struct Children<'a> {
    /// The child name in the last status (empty before the first status).
    pub old_name: &'a str,
    /// The namespaces the last status lists as provisioned.
    pub old_namespaces: &'a [String],
    /// The child name from the current spec.
    pub name: &'a str,
}

/// Deletes what is stale and ensures a child in each of `targets`; `ensure` and `delete` are called with a namespace
/// and a child name. Returns the namespaces that now hold a child. Failures go into `failed`, keyed by namespace.
pub(super) async fn apply<E, EF, D, DF>(
    children: Children<'_>,
    targets: &BTreeSet<String>,
    failed: &mut BTreeMap<String, String>,
    ensure: E,
    delete: D,
) -> Vec<String>
where
    E: Fn(String, String) -> EF,
    EF: Future<Output = Result<(), String>>,
    D: Fn(String, String) -> DF,
    DF: Future<Output = Result<(), String>>,
{
    let Children {
        old_name,
        old_namespaces,
        name,
    } = children;
    // A renamed child: the old ones go first.
    if !old_name.is_empty() && old_name != name {
        for ns in old_namespaces {
            if let Err(e) = delete(ns.clone(), old_name.to_owned()).await {
                failed.insert(ns.clone(), e);
            }
        }
    }
    for ns in old_namespaces.iter().filter(|n| !targets.contains(*n)) {
        if let Err(e) = delete(ns.clone(), name.to_owned()).await {
            failed.insert(ns.clone(), e);
        }
    }
    let mut provisioned = Vec::new();
    for ns in targets {
        match ensure(ns.clone(), name.to_owned()).await {
            Ok(()) => provisioned.push(ns.clone()),
            Err(e) => {
                failed.insert(ns.clone(), e);
            }
        }
    }
    provisioned
}

/// When to look again: after the refresh interval when every namespace succeeded, with backoff otherwise.
pub(super) fn next(refresh_interval: Option<Duration>, all_ok: bool) -> Next {
    if all_ok {
        Next::After(Some(
            refresh_interval.filter(|d| !d.is_zero()).unwrap_or(DEFAULT_REFRESH),
        ))
    } else {
        Next::Retry(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn a_rename_deletes_the_old_children_and_stale_namespaces_are_cleaned() {
        let calls = Mutex::new(Vec::new());
        let old = vec!["a".to_string(), "b".to_string()];
        let mut failed = BTreeMap::new();
        let provisioned = apply(
            Children {
                old_name: "old",
                old_namespaces: &old,
                name: "new",
            },
            &set(&["a", "c"]),
            &mut failed,
            |ns, name| {
                calls.lock().unwrap().push(format!("ensure {ns}/{name}"));
                async move { if ns == "c" { Err("denied".to_string()) } else { Ok(()) } }
            },
            |ns, name| {
                calls.lock().unwrap().push(format!("delete {ns}/{name}"));
                async { Ok(()) }
            },
        )
        .await;
        assert_eq!(
            calls.into_inner().unwrap(),
            [
                "delete a/old",
                "delete b/old",
                "delete b/new",
                "ensure a/new",
                "ensure c/new"
            ]
        );
        assert_eq!(provisioned, ["a"]);
        assert_eq!(failed, BTreeMap::from([("c".to_string(), "denied".to_string())]));
    }

    #[test]
    fn next_uses_the_interval_or_an_hour_and_retries_failures() {
        let m = Duration::from_secs(60);
        assert!(matches!(next(Some(m), true), Next::After(Some(d)) if d == m));
        assert!(matches!(next(Some(Duration::ZERO), true), Next::After(Some(d)) if d == DEFAULT_REFRESH));
        assert!(matches!(next(None, true), Next::After(Some(d)) if d == DEFAULT_REFRESH));
        assert!(matches!(next(Some(m), false), Next::Retry(None)));
    }
}
