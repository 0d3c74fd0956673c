//! The tenant boundary, as providers see it. A namespaced SecretStore is a tenant's object: it may not use the
//! operator's own identity (its service-account token, pod environment credentials, IRSA / workload identity
//! token files, the cloud metadata server) unless the operator runs with `--allow-namespaced-operator-identity`,
//! may not make the operator read a file, and reaches only the endpoints the egress policy allows. A
//! ClusterSecretStore, written by cluster admins, keeps all three; a file it names is canonicalized, checked
//! against `--credential-file-allowlist` and read up to a size cap.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::credentials::StoreScope;
use crate::error::{ProviderError, Result};
use crate::net::egress::{Egress, EgressPolicy};
use crate::registry::StoreInfo;
use crate::value::Unloggable;

/// The largest credential file read (a token or a credential configuration is a few KiB).
pub const MAX_FILE_BYTES: u64 = 64 << 10;

/// The operator's own service-account token, which no store may name as a file (ESO refuses it too).
pub const OPERATOR_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// The process-wide settings (operator flags).
#[derive(Clone, Debug)]
pub struct TenantPolicy {
    /// `--allow-namespaced-operator-identity`: namespaced SecretStores may use the operator's own identity.
    pub namespaced_operator_identity: bool,
    /// Rules for endpoints named by namespaced SecretStores.
    pub egress: Arc<EgressPolicy>,
    /// `--credential-file-allowlist`: directories (or files) a ClusterSecretStore may name.
    pub file_allowlist: Vec<PathBuf>,
    /// The bytes of provider answers all reads at once may buffer, together (every store's, whatever its scope).
    pub responses: crate::net::body::Budget,
}

impl Default for TenantPolicy {
    /// The secure defaults: no operator identity for namespaced stores, the built-in egress deny list, files only
    /// under `/var/run/secrets` (where projected tokens are mounted).
    fn default() -> Self {
        Self {
            namespaced_operator_identity: false,
            egress: Arc::new(EgressPolicy::default()),
            file_allowlist: vec![PathBuf::from("/var/run/secrets")],
            responses: crate::net::body::Budget::default(),
        }
    }
}

impl TenantPolicy {
    /// No boundary at all: for tests of providers on loopback servers, never for a running operator.
    pub fn permissive() -> Self {
        Self {
            namespaced_operator_identity: true,
            egress: Arc::new(EgressPolicy {
                allow: vec![
                    ipnet::IpNet::V4(ipnet::Ipv4Net::default()),
                    ipnet::IpNet::V6(ipnet::Ipv6Net::default()),
                ],
                ..Default::default()
            }),
            file_allowlist: vec![PathBuf::from("/")],
            responses: crate::net::body::Budget::default(),
        }
    }

    /// The egress rules of clients built for `store`.
    pub fn egress_for(&self, store: &StoreInfo) -> Egress {
        match store.scope {
            StoreScope::SecretStore => Egress::restricted(self.egress.clone()),
            StoreScope::ClusterSecretStore => Egress::unrestricted(),
        }
    }

    /// Refuses the operator's own identity for a namespaced store without the opt-in. `field` names the part of
    /// the spec that asked for it (or is missing), `what` says which identity (`"the operator's service-account
    /// token"`).
    pub fn operator_identity(&self, store: &StoreInfo, field: &str, what: &str) -> Result<()> {
        if store.scope == StoreScope::ClusterSecretStore || self.namespaced_operator_identity {
            return Ok(());
        }
        Err(ProviderError::Policy {
            field: field.to_string(),
            message: format!(
                "{what} is the operator's own identity, which a SecretStore may not use: reference credentials of \
                 its namespace, use a ClusterSecretStore, or run syncret with --allow-namespaced-operator-identity"
            ),
        })
    }

    /// Reads a credential file a store names: refused for a namespaced store; for a ClusterSecretStore the path is
    /// canonicalized (symlinks, `.`/`..` resolved), must lie under an allowlisted directory, must not be the
    /// operator's own token, must be a regular file, and is read up to [`MAX_FILE_BYTES`].
    pub async fn read_file(&self, store: &StoreInfo, field: &str, path: &str) -> Result<Unloggable<String>> {
        let refuse = |message: String| ProviderError::Policy {
            field: field.to_string(),
            message,
        };
        if store.scope == StoreScope::SecretStore {
            return Err(refuse(
                "a SecretStore may not make syncret read a file; reference a Secret, or use a ClusterSecretStore"
                    .into(),
            ));
        }
        let canonical = tokio::fs::canonicalize(path)
            .await
            .map_err(|e| refuse(format!("{path:?}: {}", e.kind())))?;
        let mut allowed = false;
        for dir in &self.file_allowlist {
            // An allowlisted directory may itself be a symlink (/var/run -> /run): compare canonical forms.
            let dir = tokio::fs::canonicalize(dir).await.unwrap_or_else(|_| dir.clone());
            allowed |= canonical.starts_with(&dir);
        }
        if !allowed {
            return Err(refuse(format!(
                "{path:?} is not under a directory of --credential-file-allowlist"
            )));
        }
        if tokio::fs::canonicalize(OPERATOR_TOKEN_FILE)
            .await
            .is_ok_and(|own| own == canonical)
            || Path::new(OPERATOR_TOKEN_FILE) == canonical
        {
            return Err(refuse(format!(
                "{path:?} is the operator's own service-account token; use serviceAccountRef"
            )));
        }
        read_capped(&canonical)
            .await
            .map_err(|e| refuse(format!("{path:?}: {e}")))
    }
}

/// Reads a regular file of at most [`MAX_FILE_BYTES`] as UTF-8 text.
async fn read_capped(path: &Path) -> std::result::Result<Unloggable<String>, String> {
    use tokio::io::AsyncReadExt as _;
    let meta = tokio::fs::metadata(path).await.map_err(|e| e.kind().to_string())?;
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    let file = tokio::fs::File::open(path).await.map_err(|e| e.kind().to_string())?;
    let mut buf = Vec::new();
    // One byte more than the cap tells a file at the cap from a larger one (or one that grew meanwhile).
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| e.kind().to_string())?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("is larger than {} KiB", MAX_FILE_BYTES >> 10));
    }
    String::from_utf8(buf)
        .map(Unloggable)
        .map_err(|_| "is not UTF-8 text".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(scope: StoreScope) -> StoreInfo {
        StoreInfo {
            scope,
            name: "s".into(),
            namespace: (scope == StoreScope::SecretStore).then(|| "ns".into()),
            uid: "u".into(),
            generation: 1,
            spec: Arc::new(serde_json::from_value(serde_json::json!({"provider": {"fake": {"data": []}}})).unwrap()),
        }
    }

    #[test]
    fn operator_identity_needs_the_opt_in_for_namespaced_stores() {
        let p = TenantPolicy::default();
        let e = p
            .operator_identity(
                &store(StoreScope::SecretStore),
                "spec.provider.aws.auth",
                "the pod's AWS credentials",
            )
            .unwrap_err();
        assert_eq!(e.reason(), "RefusedByPolicy");
        let msg = e.to_string();
        assert!(
            msg.starts_with("spec.provider.aws.auth: the pod's AWS credentials is the operator's own identity"),
            "{msg}"
        );
        assert!(msg.contains("--allow-namespaced-operator-identity"), "{msg}");
        assert!(
            p.operator_identity(&store(StoreScope::ClusterSecretStore), "f", "x")
                .is_ok()
        );
        let opted = TenantPolicy {
            namespaced_operator_identity: true,
            ..Default::default()
        };
        assert!(
            opted
                .operator_identity(&store(StoreScope::SecretStore), "f", "x")
                .is_ok()
        );
    }

    #[tokio::test]
    async fn files_are_canonicalized_allowlisted_and_capped() {
        let dir = std::env::temp_dir().join(format!("syncret-policy-{}", std::process::id()));
        let allowed = dir.join("allowed");
        tokio::fs::create_dir_all(&allowed).await.unwrap();
        tokio::fs::write(allowed.join("token"), "tok\n").await.unwrap();
        tokio::fs::write(dir.join("outside"), "secret").await.unwrap();
        tokio::fs::write(allowed.join("big"), vec![b'a'; (MAX_FILE_BYTES + 1) as usize])
            .await
            .unwrap();
        let p = TenantPolicy {
            file_allowlist: vec![allowed.clone()],
            ..Default::default()
        };
        let css = store(StoreScope::ClusterSecretStore);
        let ok = p
            .read_file(&css, "f", allowed.join("token").to_str().unwrap())
            .await
            .unwrap();
        assert_eq!(ok.0, "tok\n");
        // `..` out of the allowlisted directory, and a name that only looks like it.
        let escape = format!("{}/../outside", allowed.display());
        let e = p.read_file(&css, "f", &escape).await.unwrap_err().to_string();
        assert!(
            e.contains("is not under a directory of --credential-file-allowlist"),
            "{e}"
        );
        let e = p.read_file(&css, "f", "/dev/zero").await.unwrap_err().to_string();
        assert!(e.contains("not under"), "{e}");
        let wide = TenantPolicy {
            file_allowlist: vec![PathBuf::from("/")],
            ..Default::default()
        };
        let e = wide.read_file(&css, "f", "/dev/zero").await.unwrap_err().to_string();
        assert!(e.contains("is not a regular file"), "{e}");
        let e = p
            .read_file(&css, "f", allowed.join("big").to_str().unwrap())
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("is larger than 64 KiB"), "{e}");
        let e = p
            .read_file(
                &store(StoreScope::SecretStore),
                "spec.x",
                allowed.join("token").to_str().unwrap(),
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("spec.x: a SecretStore may not make syncret read a file"),
            "{e}"
        );
        let _ = tokio::fs::remove_dir_all(&dir).await;
    }
}
