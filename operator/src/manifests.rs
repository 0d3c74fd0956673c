//! Kubernetes manifests read from files, directories and stdin, for the commands that work without a cluster
//! (`syncret render`, `syncret check`).
//!
//! A path may be a file of one or more YAML documents (or JSON), a directory (read recursively, `*.yaml`,
//! `*.yml` and `*.json`, hidden entries skipped, in name order), or `-` for stdin. `kind: List` documents (what
//! `kubectl get -o yaml` prints) are unpacked into their items. Documents without `apiVersion` and `kind`
//! (Helm values, kustomization files) are left out; documents that are not YAML at all (Helm templates) are
//! reported as [`Skipped`] rather than failing the whole read, so a repository can be checked as it is.
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Largest file read (a manifest larger than this is certainly not one we need).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// How deep directories are followed.
const MAX_DEPTH: usize = 32;

/// Where a manifest came from: the file and the document's position in it (1-based), or the item of a List.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Source {
    pub path: PathBuf,
    pub doc: usize,
    /// Index in `items` when the document is a `List`.
    pub item: Option<usize>,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.path.display(), self.doc)?;
        if let Some(i) = self.item {
            write!(f, ".items[{i}]")?;
        }
        Ok(())
    }
}

/// One object of a manifest, as JSON.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub source: Source,
    pub value: Value,
}

impl Manifest {
    pub fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or_default()
    }

    pub fn api_version(&self) -> &str {
        self.value.get("apiVersion").and_then(Value::as_str).unwrap_or_default()
    }

    /// The API group (`external-secrets.io`; empty for the core group).
    pub fn group(&self) -> &str {
        self.api_version().rsplit_once('/').map(|(g, _)| g).unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// `metadata.namespace`, if set.
    pub fn namespace(&self) -> Option<&str> {
        self.value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
    }
}

/// A document that could not be read as a manifest; the rest of the input is still used.
#[derive(Clone, Debug)]
pub struct Skipped {
    pub source: Source,
    pub reason: String,
}

/// Everything read.
#[derive(Clone, Debug, Default)]
pub struct Manifests {
    pub objects: Vec<Manifest>,
    pub skipped: Vec<Skipped>,
}

/// Why the input could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: larger than {MAX_FILE_BYTES} bytes", path.display())]
    TooLarge { path: PathBuf },
    #[error("{}: directories nested deeper than {MAX_DEPTH}", path.display())]
    TooDeep { path: PathBuf },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ManifestError + '_ {
    move |source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads every path (files, directories, `-` for stdin).
pub fn load(paths: &[PathBuf]) -> Result<Manifests, ManifestError> {
    let mut out = Manifests::default();
    for p in paths {
        if p.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .take(MAX_FILE_BYTES.saturating_add(1))
                .read_to_string(&mut text)
                .map_err(io(p))?;
            if u64::try_from(text.len()).unwrap_or(u64::MAX) > MAX_FILE_BYTES {
                return Err(ManifestError::TooLarge { path: p.clone() });
            }
            parse_into(Path::new("<stdin>"), &text, &mut out);
        } else {
            load_path(p, 0, true, &mut out)?;
        }
    }
    Ok(out)
}

fn is_manifest_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "yaml" | "yml" | "json"))
}

fn load_path(path: &Path, depth: usize, named: bool, out: &mut Manifests) -> Result<(), ManifestError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if meta.is_dir() {
        if depth >= MAX_DEPTH {
            return Err(ManifestError::TooDeep {
                path: path.to_path_buf(),
            });
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io(path))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                !p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
            })
            .collect();
        entries.sort();
        for e in entries {
            load_path(&e, depth.saturating_add(1), false, out)?;
        }
        return Ok(());
    }
    // A file named on the command line is read whatever its name; inside directories only manifest files.
    if !named && !is_manifest_file(path) {
        return Ok(());
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(ManifestError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    parse_into(path, &text, out);
    Ok(())
}

/// Parses the documents of one file into `out`.
pub fn parse_into(path: &Path, text: &str, out: &mut Manifests) {
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let source = Source {
            path: path.to_path_buf(),
            doc: i.saturating_add(1),
            item: None,
        };
        let yaml: serde_yaml::Value = match serde::Deserialize::deserialize(doc) {
            Ok(v) => v,
            Err(e) => {
                out.skipped.push(Skipped {
                    source,
                    reason: format!("not YAML: {e}"),
                });
                // The YAML stream cannot be resynchronised after a syntax error.
                return;
            }
        };
        if yaml.is_null() {
            continue;
        }
        let value: Value = match serde_json::to_value(&yaml) {
            Ok(v) => v,
            Err(e) => {
                out.skipped.push(Skipped {
                    source,
                    reason: format!("not a Kubernetes object: {e}"),
                });
                continue;
            }
        };
        push_object(source, value, out);
    }
}

fn push_object(source: Source, value: Value, out: &mut Manifests) {
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default();
    let has_api_version = value.get("apiVersion").and_then(Value::as_str).is_some();
    if kind.is_empty() || !has_api_version {
        return;
    }
    if kind == "List" || (kind.ends_with("List") && value.get("items").is_some_and(Value::is_array)) {
        let items = match value {
            Value::Object(mut m) => m.remove("items"),
            _ => None,
        };
        for (i, item) in items
            .into_iter()
            .flat_map(|v| match v {
                Value::Array(a) => a,
                _ => Vec::new(),
            })
            .enumerate()
        {
            let item_source = Source {
                item: Some(i),
                ..source.clone()
            };
            if item.get("kind").and_then(Value::as_str).is_some() {
                out.objects.push(Manifest {
                    source: item_source,
                    value: item,
                });
            }
        }
        return;
    }
    out.objects.push(Manifest { source, value });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Manifests {
        let mut out = Manifests::default();
        parse_into(Path::new("m.yaml"), text, &mut out);
        out
    }

    #[test]
    fn multi_document_files_lists_and_noise() {
        let m = parse(
            r#"
# values.yaml-like noise
replicaCount: 2
---
apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
---
apiVersion: v1
kind: List
items:
  - apiVersion: external-secrets.io/v1
    kind: ExternalSecret
    metadata: {name: a, namespace: demo}
  - apiVersion: external-secrets.io/v1
    kind: SecretStore
    metadata: {name: s}
"#,
        );
        let kinds: Vec<(&str, String)> = m.objects.iter().map(|o| (o.kind(), o.source.to_string())).collect();
        assert_eq!(
            kinds,
            [
                ("Namespace", "m.yaml#2".to_string()),
                ("ExternalSecret", "m.yaml#4.items[0]".to_string()),
                ("SecretStore", "m.yaml#4.items[1]".to_string()),
            ]
        );
        assert_eq!(m.objects[1].group(), "external-secrets.io");
        assert_eq!(m.objects[1].namespace(), Some("demo"));
        assert_eq!(m.objects[2].namespace(), None);
        assert!(m.skipped.is_empty());
    }

    #[test]
    fn templates_are_skipped_not_fatal() {
        let m = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nname: {{ .Values.x }}\n  bad: [\n");
        assert_eq!(m.objects.len(), 1);
        assert_eq!(m.skipped.len(), 1);
        assert!(m.skipped[0].reason.starts_with("not YAML"), "{:?}", m.skipped);
        assert_eq!(m.skipped[0].source.doc, 2);
    }

    #[test]
    fn directories_are_read_recursively_in_order() {
        let dir = std::env::temp_dir().join(format!("syncret-manifests-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::create_dir_all(dir.join(".git")).unwrap();
        let obj = |n: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {n}}}\n");
        std::fs::write(dir.join("b.yaml"), obj("b")).unwrap();
        std::fs::write(dir.join("a.yml"), obj("a")).unwrap();
        std::fs::write(
            dir.join("sub/c.json"),
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}"#,
        )
        .unwrap();
        std::fs::write(dir.join("README.md"), obj("ignored")).unwrap();
        std::fs::write(dir.join(".git/x.yaml"), obj("hidden")).unwrap();
        let m = load(std::slice::from_ref(&dir)).unwrap();
        let names: Vec<&str> = m.objects.iter().map(Manifest::name).collect();
        assert_eq!(names, ["a", "b", "c"]);
        // A file named explicitly is read whatever its extension.
        let m = load(&[dir.join("README.md")]).unwrap();
        assert_eq!(m.objects.len(), 1);
        assert!(matches!(
            load(&[dir.join("missing.yaml")]),
            Err(ManifestError::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
