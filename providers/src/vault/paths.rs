//! Where a `remoteRef.key` lives in Vault: the KV mount and the path below it, with ESO's rules
//! (`providers/v1/vault/client_get.go`, `buildPath`):
//! - `spec.provider.vault.path` is the KV mount (`secret`, or nested `team/kv`). A key that starts with the mount
//!   (and, for KV v2, `mount/data/`) has it stripped, so `secret/app`, `secret/data/app` and `app` all name the
//!   same secret.
//! - Without `path` the key carries the mount: for KV v2 `mount/data/rest` when it contains `/data/`, otherwise
//!   the first segment is the mount (`secret/app` → mount `secret`, path `app`).
//!
//! The data path is then `mount/data/path` (v2) or `mount/path` (v1), and the metadata path `mount/metadata/path`.
//! Unlike ESO (whose metadata path keeps a mount prefix in the key, so `secret/app` with `path: secret` reads
//! `secret/metadata/secret/app`), data and metadata always address the same secret here.
use syncret_crds::provider::vault::VaultKVStoreVersion;

use crate::error::{ProviderError, Result};

/// A KV mount and a path below it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvPath {
    pub mount: String,
    pub path: String,
}

/// The configured mount, normalised: no surrounding slashes, and for KV v2 no trailing `/data` (ESO's CRD doc
/// says the suffix is added when missing; `secret/data` as the mount means `secret`).
pub fn normalise_mount(mount: Option<&str>, version: VaultKVStoreVersion) -> Option<String> {
    let m = mount?.trim().trim_matches('/');
    let m = match version {
        VaultKVStoreVersion::V2 => m.strip_suffix("/data").unwrap_or(m),
        VaultKVStoreVersion::V1 => m,
    };
    (!m.is_empty()).then(|| m.to_string())
}

/// Locates a secret (`remoteRef.key`, a PushSecret `remoteKey`). `base` names the provider for errors.
pub fn locate(mount: Option<&str>, version: VaultKVStoreVersion, key: &str, base: &str) -> Result<KvPath> {
    let key = key.trim().trim_start_matches('/');
    if key.is_empty() {
        return Err(ProviderError::invalid_config("remoteRef.key", "must not be empty"));
    }
    match mount {
        Some(mount) => {
            let mut rest = key;
            if let Some(r) = rest.strip_prefix(mount).and_then(|r| r.strip_prefix('/')) {
                rest = r;
                if version == VaultKVStoreVersion::V2
                    && let Some(r) = rest.strip_prefix("data/")
                {
                    rest = r;
                }
            }
            Ok(KvPath {
                mount: mount.to_string(),
                path: rest.to_string(),
            })
        }
        None => {
            if version == VaultKVStoreVersion::V2
                && let Some((m, rest)) = key.split_once("/data/")
                && !m.is_empty()
            {
                return Ok(KvPath {
                    mount: m.to_string(),
                    path: rest.to_string(),
                });
            }
            match key.split_once('/') {
                Some((m, rest)) if !m.is_empty() && !rest.is_empty() => Ok(KvPath {
                    mount: m.to_string(),
                    path: rest.to_string(),
                }),
                _ => Err(ProviderError::invalid_config(
                    format!("{base}.path"),
                    format!(
                        "key {key:?} names no KV mount: set {base}.path to the mount, or start the key with it \
                         (e.g. secret/{key})"
                    ),
                )),
            }
        }
    }
}

/// Locates the directory `dataFrom.find.path` lists (the mount itself when there is no `find.path`). Returns
/// the location and the prefix that names found secrets (ESO keys them by `find.path/child`).
pub fn locate_dir(
    mount: Option<&str>,
    version: VaultKVStoreVersion,
    find_path: Option<&str>,
    base: &str,
) -> Result<(KvPath, String)> {
    let dir = find_path.map(|p| p.trim().trim_matches('/')).unwrap_or_default();
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    if dir.is_empty() {
        return match mount {
            Some(m) => Ok((
                KvPath {
                    mount: m.to_string(),
                    path: String::new(),
                },
                prefix,
            )),
            None => Err(ProviderError::invalid_config(
                format!("{base}.path"),
                "dataFrom.find needs the KV mount: set it here or in find.path",
            )),
        };
    }
    if mount.is_none() && !dir.contains('/') {
        // `find.path: secret` without a store path: list the whole mount.
        return Ok((
            KvPath {
                mount: dir.to_string(),
                path: String::new(),
            },
            prefix,
        ));
    }
    let loc = locate(mount, version, dir, base)?;
    Ok((
        KvPath {
            path: format!("{}/", loc.path.trim_end_matches('/')),
            ..loc
        },
        prefix,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use VaultKVStoreVersion::{V1, V2};

    fn at(mount: Option<&str>, v: VaultKVStoreVersion, key: &str) -> (String, String) {
        let p = locate(mount, v, key, "spec.provider.vault").unwrap();
        (p.mount, p.path)
    }

    fn s(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    #[test]
    fn eso_build_path_examples() {
        // The table in ESO's buildPath doc comment.
        assert_eq!(at(Some("secret/path"), V2, "foo"), s("secret/path", "foo"));
        assert_eq!(at(Some("secret/path"), V1, "foo"), s("secret/path", "foo"));
        assert_eq!(at(Some("secret/path"), V2, "secret/path/foo"), s("secret/path", "foo"));
        assert_eq!(
            at(Some("secret/path"), V2, "secret/path/data/foo"),
            s("secret/path", "foo")
        );
        assert_eq!(at(Some("secret/path"), V1, "secret/path/foo"), s("secret/path", "foo"));
        assert_eq!(at(None, V2, "secret/path/foo"), s("secret", "path/foo"));
        assert_eq!(at(None, V2, "secret/path/data/foo"), s("secret/path", "foo"));
        assert_eq!(at(None, V1, "secret/path/foo"), s("secret", "path/foo"));
        // A key that only shares a prefix with the mount is not stripped.
        assert_eq!(at(Some("secret"), V2, "secrets/x"), s("secret", "secrets/x"));
        // v1 keeps a `data/` segment: it is an ordinary path there.
        assert_eq!(at(Some("kv"), V1, "kv/data/x"), s("kv", "data/x"));
    }

    #[test]
    fn mount_is_normalised() {
        assert_eq!(normalise_mount(Some("/secret/"), V2).as_deref(), Some("secret"));
        assert_eq!(normalise_mount(Some("secret/data"), V2).as_deref(), Some("secret"));
        assert_eq!(normalise_mount(Some("secret/data"), V1).as_deref(), Some("secret/data"));
        assert_eq!(normalise_mount(Some(" "), V2), None);
        assert_eq!(normalise_mount(None, V2), None);
    }

    #[test]
    fn key_without_mount_is_a_config_error_naming_the_field() {
        let err = locate(None, V2, "app", "spec.provider.vault").unwrap_err();
        assert!(matches!(&err, ProviderError::InvalidConfig { field, .. } if field == "spec.provider.vault.path"));
        assert!(locate(Some("secret"), V2, "", "b").is_err());
    }

    #[test]
    fn find_directories() {
        let d = |m: Option<&str>, p: Option<&str>| {
            let (loc, prefix) = locate_dir(m, V2, p, "b").unwrap();
            (loc.mount, loc.path, prefix)
        };
        let t = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(d(Some("secret"), None), t("secret", "", ""));
        assert_eq!(d(Some("secret"), Some("team/")), t("secret", "team/", "team/"));
        assert_eq!(
            d(Some("secret"), Some("secret/team")),
            t("secret", "team/", "secret/team/")
        );
        assert_eq!(d(None, Some("secret/team")), t("secret", "team/", "secret/team/"));
        assert_eq!(d(None, Some("secret")), t("secret", "", "secret/"));
        assert!(locate_dir(None, V2, None, "b").is_err());
    }
}
