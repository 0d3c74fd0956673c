//! Every label, annotation, finalizer and field-manager name ESO reads or writes. Users' tooling (and ESO itself
//! during a migration) depends on these exact strings.

/// Label on every CRD of ours: `external-secrets.io/component=controller`.
pub const LABEL_COMPONENT: &str = "external-secrets.io/component";
/// Value of [`LABEL_COMPONENT`].
pub const LABEL_COMPONENT_VALUE: &str = "controller";

/// Label on every Secret managed by an ExternalSecret; the Secret watch filters on it.
pub const LABEL_MANAGED: &str = "reconcile.external-secrets.io/managed";
/// Value of [`LABEL_MANAGED`].
pub const LABEL_MANAGED_VALUE: &str = "true";
/// Label set with `creationPolicy: Owner`: `sha3-224("<namespace>/<name>")` of the owning ExternalSecret, hex.
/// It lets the controller delete the old Secret when `target.name` changes.
pub const LABEL_CREATED_BY: &str = "reconcile.external-secrets.io/created-by";
/// Annotation with the hash of the managed Secret's data (`sha3-224` of Go's `%+v` of `.data`).
pub const ANNOTATION_DATA_HASH: &str = "reconcile.external-secrets.io/data-hash";

/// Annotation whose change forces a resync; a ClusterExternalSecret mirrors it onto its ExternalSecrets.
pub const ANNOTATION_FORCE_SYNC: &str = "external-secrets.io/force-sync";
/// Annotation on a store that silences the `StoreUnmaintained` / `StoreDeprecated` warnings.
pub const ANNOTATION_IGNORE_MAINTENANCE_CHECKS: &str = "external-secrets.io/ignore-maintenance-checks";

/// Label a Secret needs before the webhook provider may read it (value [`LABEL_TYPE_WEBHOOK_VALUE`]).
pub const LABEL_TYPE: &str = "external-secrets.io/type";
/// Value of [`LABEL_TYPE`] for Secrets used by the webhook provider.
pub const LABEL_TYPE_WEBHOOK_VALUE: &str = "webhook";
/// Label on GeneratorState objects naming their owner.
pub const LABEL_GENERATOR_OWNER_KEY: &str = "generators.external-secrets.io/owner-key";

/// Finalizer on an ExternalSecret: removes the target on deletion when `deletionPolicy: Delete` and the
/// ExternalSecret controls the target.
pub const FINALIZER_EXTERNAL_SECRET_CLEANUP: &str = "externalsecrets.external-secrets.io/externalsecret-cleanup";
/// Finalizer on a ClusterExternalSecret.
pub const FINALIZER_CLUSTER_EXTERNAL_SECRET_CLEANUP: &str =
    "externalsecrets.external-secrets.io/clusterexternalsecret-cleanup";
/// Prefix of the finalizer a ClusterExternalSecret puts on each selected Namespace (`…ces-<name>`).
pub const FINALIZER_CES_NAMESPACE_PREFIX: &str = "externalsecrets.external-secrets.io/ces-";
/// Finalizer on a store while a PushSecret with `deletionPolicy: Delete` uses it.
pub const FINALIZER_SECRET_STORE: &str = "secretstore.externalsecrets.io/finalizer";
/// Finalizer on a PushSecret (cleanup of pushed secrets with `deletionPolicy: Delete`).
pub const FINALIZER_PUSH_SECRET: &str = "pushsecret.externalsecrets.io/finalizer";
/// Finalizer on a GeneratorState.
pub const FINALIZER_GENERATOR_STATE: &str = "generatorstate.externalsecrets.io/finalizer";

/// Prefix of the field manager ESO uses when writing a target Secret: `externalsecrets.external-secrets.io/<es-name>`.
/// When that whole string is longer than 63 characters ([`FIELD_MANAGER_MAX_LEN`]; a name of more than 27), ESO
/// uses [`FIELD_MANAGER_SHA_PREFIX`] followed by the hex `sha3-224` of the ExternalSecret name instead.
pub const FIELD_MANAGER_PREFIX: &str = "externalsecrets.external-secrets.io/";
/// Prefix of the hashed form of the field manager (see [`FIELD_MANAGER_PREFIX`]).
pub const FIELD_MANAGER_SHA_PREFIX: &str = "externalsecrets.external-secrets.io/sha3/";
/// Longest field manager (prefix and name) ESO uses unhashed.
pub const FIELD_MANAGER_MAX_LEN: usize = 63;

/// The finalizer the ClusterExternalSecret `ces_name` puts on each Namespace it selects.
pub fn ces_namespace_finalizer(ces_name: &str) -> String {
    format!("{FINALIZER_CES_NAMESPACE_PREFIX}{ces_name}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn ces_finalizer() {
        assert_eq!(
            super::ces_namespace_finalizer("db"),
            "externalsecrets.external-secrets.io/ces-db"
        );
    }
}
