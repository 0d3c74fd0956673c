//! Generic targets (`spec.target.manifest`, ESO v1.0/v2.9): the ExternalSecret writes a ConfigMap or a custom
//! resource instead of a Secret. Pure: which kinds may be written ([`allowed`]), the object to apply
//! ([`render`], ESO's `applyTemplateToManifest`), whether an existing object may be written and whether it is
//! already right ([`plan`], [`is_intact`]).
//!
//! ESO's semantics, kept:
//! - off unless the operator runs with `--unsafe-allow-generic-targets`; the object lives in the ExternalSecret's
//!   namespace, named by `target.name` (default: the ExternalSecret's name); namespaced kinds only;
//! - without a template, a ConfigMap gets the fetched data as `data`, any other kind as `spec.data`;
//! - `template.data` renders into `data`; `templateFrom[].literal` renders a YAML document that goes to
//!   `Data`/`Labels`/`Annotations` (a map of strings) or to a path such as `spec.rules[0].from` (the document
//!   itself, merged into a map already there; a path of one key replaces it); `templateFrom` ConfigMap and Secret
//!   items into `Data` are rendered, then rendered once more (ESO passes them through a temporary Secret and
//!   executes the result again);
//! - labels and annotations: the template's `metadata` copied as they are (ESO does not render them for generic
//!   targets), or without a template the ExternalSecret's own; plus `reconcile.external-secrets.io/managed=true`
//!   and the data-hash annotation, ESO's hash (sha3-224 of Go's `%+v`) of `spec`, or of `data` when there is no
//!   `spec`;
//! - `creationPolicy` Owner sets a controller reference and the `created-by` label; Merge writes only into an
//!   object that exists; None writes nothing; the status reasons are `ResourceSynced`, `ResourceSyncedError`,
//!   `ResourceDeleted`, `ResourceMissing`.
//!
//! Where syncret differs (`docs/generic-targets.md`): the kind must also be listed in `--generic-target-resources`
//! (default `configmaps`), some kinds are refused whatever the flags say ([`NEVER`]), `Owner` and `Orphan` do not
//! take over an object they did not write (unless annotated `syncret.dev/adopt-existing-secret: "true"`), the
//! write is a server-side apply (fields of other writers stay, fields this ExternalSecret stops writing go), and
//! `templateFrom` ConfigMap/Secret items aimed at `Labels`, `Annotations` or a path are written there (ESO's
//! temporary Secret drops them).
use std::collections::BTreeMap;

use kube::ResourceExt;
use serde_json::{Map, Value, json};
use sha3::{Digest, Sha3_224};
use syncret_crds::externalsecret::{ExternalSecret, ExternalSecretCreationPolicy, TemplateScope};
use syncret_crds::labels::{ANNOTATION_DATA_HASH, LABEL_CREATED_BY, LABEL_MANAGED, LABEL_MANAGED_VALUE};

use super::decode::{self, Decoding};
use super::desired::{DesiredError, TemplateSources};
use super::desired::{Renderer, TemplateOptions};
use super::hash;
use super::secret::{ANNOTATION_ADOPT, field_manager, owner_reference};
use syncret_template::{Budget, Value as TplValue};

/// The field every generic-target refusal names.
pub const FIELD: &str = "spec.target.manifest";

/// Which generic targets this operator writes (`--unsafe-allow-generic-targets`, `--generic-target-resources`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenericTargets {
    /// ESO's `--unsafe-allow-generic-targets`.
    pub enabled: bool,
    /// Resources that may be written, as `<plural>` (core) or `<plural>.<group>` (`applications.argoproj.io`).
    pub resources: Vec<String>,
}

impl Default for GenericTargets {
    fn default() -> Self {
        Self {
            enabled: false,
            resources: vec!["configmaps".into()],
        }
    }
}

/// A kind as the apiserver's discovery describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetKind {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
}

impl TargetKind {
    /// `<plural>` or `<plural>.<group>`, as `--generic-target-resources` and RBAC name it.
    pub fn resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Kinds no ExternalSecret may write, whatever the flags say: (group, resource or `*`, why).
pub const NEVER: &[(&str, &str, &str)] = &[
    ("rbac.authorization.k8s.io", "*", "it grants permissions"),
    ("external-secrets.io", "*", "it is syncret's own API"),
    ("generators.external-secrets.io", "*", "it is syncret's own API"),
    ("admissionregistration.k8s.io", "*", "it is cluster policy"),
    ("apiextensions.k8s.io", "*", "it is cluster policy"),
    ("certificates.k8s.io", "*", "it issues credentials"),
    ("coordination.k8s.io", "*", "leases elect controllers' leaders"),
    ("", "pods", "it runs code"),
    ("", "serviceaccounts", "it is an identity"),
    ("", "secrets", "Secrets are written as Secrets (no manifest)"),
];

/// Why a generic target is refused. Every message names [`FIELD`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// ESO's message.
    #[error("{FIELD}: generic targets are disabled. Enable with --unsafe-allow-generic-targets flag")]
    Disabled,
    #[error("{FIELD}: {resource} can never be a target: {why}")]
    Never { resource: String, why: &'static str },
    #[error("{FIELD}: {resource} is cluster-scoped; a target must live in the ExternalSecret's namespace")]
    ClusterScoped { resource: String },
    #[error("{FIELD}: {resource} is not in --generic-target-resources ({allowed})")]
    NotAllowed { resource: String, allowed: String },
    #[error("{FIELD}: no kind {kind:?} in apiVersion {api_version:?} on this cluster: {reason}")]
    UnknownKind {
        api_version: String,
        kind: String,
        reason: String,
    },
    #[error("{FIELD}: apiVersion and kind are required")]
    Incomplete,
}

/// Whether this operator writes objects of `k` for ExternalSecrets (the flag is checked before discovery, by
/// [`enabled`]).
pub fn allowed(policy: &GenericTargets, k: &TargetKind) -> Result<(), TargetError> {
    enabled(policy)?;
    let resource = k.resource();
    if let Some((_, _, why)) = NEVER
        .iter()
        .find(|(g, r, _)| *g == k.group && (*r == "*" || *r == k.plural))
    {
        return Err(TargetError::Never { resource, why });
    }
    if !k.namespaced {
        return Err(TargetError::ClusterScoped { resource });
    }
    if !policy.resources.iter().any(|r| r.eq_ignore_ascii_case(&resource)) {
        return Err(TargetError::NotAllowed {
            resource,
            allowed: policy.resources.join(","),
        });
    }
    Ok(())
}

/// ESO's `--unsafe-allow-generic-targets`.
pub fn enabled(policy: &GenericTargets) -> Result<(), TargetError> {
    if policy.enabled {
        Ok(())
    } else {
        Err(TargetError::Disabled)
    }
}

/// The object to apply, and the data-hash it carries.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    /// What this ExternalSecret writes: apiVersion, kind, metadata (name, namespace, labels, annotations, the
    /// controller reference for Owner) and content.
    pub object: Value,
    /// ESO's data-hash of the object as it will be after the write.
    pub hash: String,
}

fn derr(field: impl Into<String>, message: impl Into<String>) -> DesiredError {
    DesiredError {
        field: field.into(),
        message: message.into(),
    }
}

/// The skeleton ESO starts from for a new object: `data: {}` for a ConfigMap (or Secret), `spec: {}` otherwise.
fn skeleton(k: &TargetKind, namespace: &str, name: &str) -> Value {
    let mut o = json!({
        "apiVersion": k.api_version(),
        "kind": k.kind,
        "metadata": {"name": name, "namespace": namespace},
    });
    let content = if k.group.is_empty() && matches!(k.kind.as_str(), "ConfigMap" | "Secret") {
        "data"
    } else {
        "spec"
    };
    o[content] = json!({});
    o
}

/// Renders the object `es` wants, ESO's `applyTemplateToManifest`: the template applied to `base` (the existing
/// object, for the hash of what it will hold) and to a fresh skeleton (what this ExternalSecret applies).
pub fn render(
    es: &ExternalSecret,
    k: &TargetKind,
    fetched: &BTreeMap<String, Vec<u8>>,
    sources: &TemplateSources,
    templates: TemplateOptions<'_>,
    existing: Option<&Value>,
) -> Result<Rendered, DesiredError> {
    let ns = es.namespace().unwrap_or_default();
    let name = es.target_name().unwrap_or_default().to_string();
    let mut ours = skeleton(k, &ns, &name);
    fill(es, k, fetched, sources, templates, &mut ours)?;
    let mut merged = match existing {
        Some(e) => strip_bookkeeping(e.clone()),
        None => skeleton(k, &ns, &name),
    };
    fill(es, k, fetched, sources, templates, &mut merged)?;
    let hash = content_hash(&merged).ok_or_else(|| {
        derr(
            FIELD,
            format!("generic target content of {name:?} does not have a spec or data field for content hashing"),
        )
    })?;
    put(
        &mut ours,
        &["metadata", "annotations", ANNOTATION_DATA_HASH],
        json!(hash),
    )?;
    if es.spec.target.creation_policy == ExternalSecretCreationPolicy::Owner {
        put(
            &mut ours,
            &["metadata", "labels", LABEL_CREATED_BY],
            json!(hash::owner_label(&ns, &es.name_any())),
        )?;
        let owner = serde_json::to_value(vec![owner_reference(es)]).map_err(|e| derr(FIELD, e.to_string()))?;
        put(&mut ours, &["metadata", "ownerReferences"], owner)?;
    }
    Ok(Rendered { object: ours, hash })
}

/// What an existing object's metadata must not carry into the merged view (only `spec`/`data` are hashed, but
/// keep the view small).
fn strip_bookkeeping(mut o: Value) -> Value {
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    o
}

/// Puts `value` at `path` (maps made where missing), ESO's `unstructured.SetNested…`.
fn put(obj: &mut Value, path: &[&str], value: Value) -> Result<(), DesiredError> {
    let steps: Vec<Step> = path.iter().map(|p| Step::Key((*p).to_string())).collect();
    let mut value = Some(value);
    set_at(obj, &steps, &mut |_| value.take().unwrap_or(Value::Null))
        .map_err(|m| derr(FIELD, format!("cannot set {}: {m}", path.join("."))))
}

/// Labels/annotations, then the content: ESO's order.
fn fill(
    es: &ExternalSecret,
    k: &TargetKind,
    fetched: &BTreeMap<String, Vec<u8>>,
    sources: &TemplateSources,
    templates: TemplateOptions<'_>,
    obj: &mut Value,
) -> Result<(), DesiredError> {
    let tpl = es.spec.target.template.as_ref();
    let (labels, annotations) = match tpl {
        Some(t) => (t.metadata.labels.clone(), t.metadata.annotations.clone()),
        None => {
            let mut a = es.metadata.annotations.clone().unwrap_or_default();
            a.retain(|k, _| !super::desired::NOT_COPIED.contains(&k.as_str()));
            (es.metadata.labels.clone().unwrap_or_default(), a)
        }
    };
    for (key, v) in labels {
        put(obj, &["metadata", "labels", &key], json!(v))?;
    }
    put(obj, &["metadata", "labels", LABEL_MANAGED], json!(LABEL_MANAGED_VALUE))?;
    if es.spec.target.creation_policy != ExternalSecretCreationPolicy::Owner
        && let Some(l) = obj.pointer_mut("/metadata/labels").and_then(Value::as_object_mut)
    {
        l.remove(LABEL_CREATED_BY);
    }
    for (key, v) in annotations {
        put(obj, &["metadata", "annotations", &key], json!(v))?;
    }
    let Some(tpl) = tpl else {
        // No template: a ConfigMap's data, anything else's spec.data.
        let data: Map<String, Value> = fetched
            .iter()
            .map(|(key, v)| (key.clone(), json!(String::from_utf8_lossy(v))))
            .collect();
        if k.group.is_empty() && k.kind == "ConfigMap" {
            put(obj, &["data"], Value::Object(data))?;
        } else {
            put(obj, &["spec", "data"], Value::Object(data))?;
        }
        return Ok(());
    };
    // One budget for every template of this render, as for a Secret target.
    let budget = Budget::new(templates.budget);
    let data = TplValue::from_data_in(fetched, &budget).map_err(|e| {
        derr(
            "spec.target.template",
            format!("the fetched data does not fit the template memory budget: {e}"),
        )
    })?;
    let r = Renderer {
        delims: templates.delims,
        budget,
        data,
    };
    for (i, from) in tpl.template_from.iter().enumerate() {
        let base = format!("spec.target.template.templateFrom[{i}]");
        let target = if from.target.is_empty() {
            "Data"
        } else {
            from.target.as_str()
        };
        let dec = decoding(from.values_decoding_strategy());
        if let Some(literal) = &from.literal {
            let field = format!("{base}.literal");
            let out = r.render(&field, &field, literal)?;
            apply_document(obj, &field, &out, target, dec)?;
        }
        let named = [
            ("configMap", from.config_map.as_ref(), true),
            ("secret", from.secret.as_ref(), false),
        ];
        for (what, tref, is_cm) in named {
            let Some(tref) = tref else { continue };
            let data = if is_cm {
                sources.config_maps.get(&tref.name).map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
                        .collect::<BTreeMap<_, _>>()
                })
            } else {
                sources.secrets.get(&tref.name).cloned()
            };
            let data = data.ok_or_else(|| {
                derr(
                    format!("{base}.{what}.name"),
                    format!(
                        "{} {:?} not found",
                        if is_cm { "ConfigMap" } else { "Secret" },
                        tref.name
                    ),
                )
            })?;
            for (j, item) in tref.items.iter().enumerate() {
                let field = format!("{base}.{what}.items[{j}]");
                let src = data.get(&item.key).ok_or_else(|| {
                    let kind = if is_cm { "configmap" } else { "secret" };
                    derr(
                        &field,
                        format!("error in {kind} {}: missing key {}", tref.name, item.key),
                    )
                })?;
                let src = std::str::from_utf8(src).map_err(|_| derr(&field, "template is not UTF-8"))?;
                let out = r.render(&field, &item.key, src)?;
                match item.template_as {
                    TemplateScope::Values => {
                        let v = decode::decode(dec, &out).map_err(|e| {
                            derr(
                                &field,
                                format!("failed to decode rendered template value for key {}: {e}", item.key),
                            )
                        })?;
                        if target.eq_ignore_ascii_case("data") {
                            // ESO renders what its temporary Secret holds once more.
                            let text = String::from_utf8_lossy(&v);
                            let again = r.render(&field, &item.key, &text)?;
                            set_string(obj, "data", &item.key, &again)?;
                        } else {
                            apply_value(obj, &field, &item.key, &v, target)?;
                        }
                    }
                    TemplateScope::KeysAndValues => {
                        if target.eq_ignore_ascii_case("data") {
                            for (key, v) in string_map(&field, &out)? {
                                let v = decode::decode(dec, v.as_bytes()).map_err(|e| {
                                    derr(
                                        &field,
                                        format!("failed to decode rendered template value for key {key}: {e}"),
                                    )
                                })?;
                                let again = r.render(&field, &key, &String::from_utf8_lossy(&v))?;
                                set_string(obj, "data", &key, &again)?;
                            }
                        } else {
                            apply_document(obj, &field, &out, target, dec)?;
                        }
                    }
                }
            }
        }
    }
    for (key, src) in &tpl.data {
        let field = format!("spec.target.template.data[{key}]");
        let out = r.render(&field, key, src)?;
        set_string(obj, "data", key, &out)?;
    }
    Ok(())
}

fn decoding(d: syncret_crds::externalsecret::ExternalSecretDecodingStrategy) -> Decoding {
    use syncret_crds::externalsecret::ExternalSecretDecodingStrategy as D;
    match d {
        D::None => Decoding::None,
        D::Base64 => Decoding::Base64,
        D::Base64Url => Decoding::Base64Url,
        D::Auto => Decoding::Auto,
    }
}

/// `obj[top][key] = value` as a string (ESO's `setField`; a generic object's data holds strings).
fn set_string(obj: &mut Value, top: &str, key: &str, value: &[u8]) -> Result<(), DesiredError> {
    put(obj, &[top, key], json!(String::from_utf8_lossy(value)))
}

/// A rendered YAML map of strings (ESO's `map[string][]byte` unmarshal); errors say where, not what.
fn string_map(field: &str, rendered: &[u8]) -> Result<BTreeMap<String, String>, DesiredError> {
    if rendered.iter().all(u8::is_ascii_whitespace) {
        return Ok(BTreeMap::new());
    }
    serde_yaml::from_slice(rendered).map_err(|e| {
        derr(
            field,
            format!(
                "could not unmarshal template to 'map[string][]byte': {}",
                yaml_reason(&e)
            ),
        )
    })
}

fn yaml_reason(e: &serde_yaml::Error) -> String {
    match e.location() {
        Some(l) => format!("invalid YAML at line {} column {}", l.line(), l.column()),
        None => "invalid YAML".to_string(),
    }
}

/// One value to `target` (ESO's `applyToTarget`): labels, annotations, data, `spec` (a key of it) or a path (the
/// value, read as YAML when it parses, at the path).
fn apply_value(obj: &mut Value, field: &str, key: &str, value: &[u8], target: &str) -> Result<(), DesiredError> {
    match target.to_ascii_lowercase().as_str() {
        "annotations" => put(
            obj,
            &["metadata", "annotations", key],
            json!(String::from_utf8_lossy(value)),
        )?,
        "labels" => put(obj, &["metadata", "labels", key], json!(String::from_utf8_lossy(value)))?,
        "data" => set_string(obj, "data", key, value)?,
        "spec" => set_string(obj, "spec", key, value)?,
        _ => {
            let path = parse_path(target).map_err(|m| derr(format!("{field}: target"), m))?;
            let leaf = yaml_or_string(value);
            set_at(obj, &path, &mut |_| leaf.clone())
                .map_err(|m| derr(field, format!("failed to set path {target}: {m}")))?;
        }
    }
    Ok(())
}

/// A rendered document to `target` (ESO's `mapScopeApply`): a map of strings for labels, annotations and data;
/// otherwise the document at the path (merged into a map already there; a one-key path is replaced).
fn apply_document(
    obj: &mut Value,
    field: &str,
    rendered: &[u8],
    target: &str,
    dec: Decoding,
) -> Result<(), DesiredError> {
    let lower = target.to_ascii_lowercase();
    if matches!(lower.as_str(), "annotations" | "labels" | "data") {
        for (key, v) in string_map(field, rendered)? {
            let v = decode::decode(dec, v.as_bytes()).map_err(|e| {
                derr(
                    field,
                    format!("failed to decode rendered template value for key {key}: {e}"),
                )
            })?;
            apply_value(obj, field, &key, &v, target)?;
        }
        return Ok(());
    }
    let parsed = if rendered.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        let y: serde_yaml::Value = serde_yaml::from_slice(rendered)
            .map_err(|e| derr(field, format!("could not unmarshal template YAML: {}", yaml_reason(&e))))?;
        yaml_to_json(y, 0).map_err(|m| derr(field, m))?
    };
    let path = parse_path(target).map_err(|m| derr(format!("{field}: target"), m))?;
    let single = matches!(path.as_slice(), [Step::Key(_)]);
    let mut leaf = |existing: Value| -> Value {
        match (existing, &parsed) {
            (Value::Object(mut have), Value::Object(new)) if !single => {
                for (k, v) in new {
                    have.insert(k.clone(), v.clone());
                }
                Value::Object(have)
            }
            _ => parsed.clone(),
        }
    };
    set_at(obj, &path, &mut leaf).map_err(|m| derr(field, format!("failed to set path {target}: {m}")))
}

/// How deep a YAML document may nest (serde_yaml stops at 128 itself).
const MAX_DEPTH: usize = 128;

/// A YAML value as JSON (keys made strings, as Go's YAML-to-JSON conversion does).
fn yaml_to_json(v: serde_yaml::Value, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err("YAML nested too deep".into());
    }
    Ok(match v {
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Bool(b) => Value::Bool(b),
        serde_yaml::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(u) = n.as_u64() {
                json!(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| "a number JSON cannot hold (NaN or infinite)".to_string())?
            }
        }
        serde_yaml::Value::String(s) => Value::String(s),
        serde_yaml::Value::Sequence(items) => Value::Array(
            items
                .into_iter()
                .map(|i| yaml_to_json(i, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        serde_yaml::Value::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    serde_yaml::Value::String(s) => s,
                    serde_yaml::Value::Bool(b) => b.to_string(),
                    serde_yaml::Value::Number(n) => n.to_string(),
                    serde_yaml::Value::Null => "null".into(),
                    _ => return Err("a YAML map key that is not a scalar".into()),
                };
                out.insert(key, yaml_to_json(v, depth + 1)?);
            }
            Value::Object(out)
        }
        serde_yaml::Value::Tagged(t) => yaml_to_json(t.value, depth + 1)?,
    })
}

/// ESO's `tryParseYAML`: the value read as YAML, or the string itself when it does not parse.
fn yaml_or_string(value: &[u8]) -> Value {
    let text = String::from_utf8_lossy(value).into_owned();
    serde_yaml::from_str::<serde_yaml::Value>(&text)
        .ok()
        .and_then(|y| yaml_to_json(y, 0).ok())
        .unwrap_or(Value::String(text))
}

/// One step of a target path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// The largest array index a path may name (ESO's `maxArrayIndex`: arrays grow to it).
pub const MAX_INDEX: usize = 10_000;

/// ESO's `parseTargetPath`: `spec.rules[0].from[0].source`, keys and indices; must start with a key.
pub fn parse_path(target: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    for seg in target.split('.') {
        if seg.is_empty() {
            return Err(format!("invalid path {target:?}: empty segment"));
        }
        let (name, mut rest) = match seg.find('[') {
            Some(i) => (&seg[..i], &seg[i..]),
            None => (seg, ""),
        };
        if !name.is_empty() {
            steps.push(Step::Key(name.to_string()));
        } else if rest.is_empty() {
            return Err(format!("invalid path {target:?}: empty segment"));
        }
        while !rest.is_empty() {
            let Some(inner) = rest.strip_prefix('[') else {
                return Err(format!("invalid path {target:?}: expected '[' near {rest:?}"));
            };
            let Some(end) = inner.find(']') else {
                return Err(format!("invalid path {target:?}: unterminated '['"));
            };
            let idx: i64 = inner[..end]
                .parse()
                .map_err(|_| format!("invalid path {target:?}: bad index {:?}", &inner[..end]))?;
            let idx = usize::try_from(idx).map_err(|_| format!("invalid path {target:?}: negative index {idx}"))?;
            if idx > MAX_INDEX {
                return Err(format!(
                    "invalid path {target:?}: index {idx} exceeds maximum ({MAX_INDEX})"
                ));
            }
            steps.push(Step::Index(idx));
            rest = &inner[end + 1..];
        }
    }
    match steps.first() {
        None => Err(format!("invalid path: {target}")),
        Some(Step::Index(_)) => Err(format!("invalid path {target:?}: path must start with a key")),
        Some(Step::Key(_)) => Ok(steps),
    }
}

/// ESO's `setAtPath`: walks `node` along `path`, creating maps and growing arrays as needed, and puts
/// `leaf(existing)` at the end.
fn set_at(node: &mut Value, path: &[Step], leaf: &mut dyn FnMut(Value) -> Value) -> Result<(), String> {
    let Some((step, rest)) = path.split_first() else {
        let existing = std::mem::take(node);
        *node = leaf(existing);
        return Ok(());
    };
    match step {
        Step::Key(k) => {
            if node.is_null() || node.as_object().is_some_and(Map::is_empty) {
                *node = json!({});
            }
            let Some(m) = node.as_object_mut() else {
                return Err(format!("expected map at key {k:?} but found {}", type_name(node)));
            };
            set_at(m.entry(k.clone()).or_insert(Value::Null), rest, leaf)
        }
        Step::Index(i) => {
            if node.is_null() {
                *node = json!([]);
            }
            let Some(a) = node.as_array_mut() else {
                return Err(format!("expected array at index {i} but found {}", type_name(node)));
            };
            if *i >= a.len() {
                a.resize(i.saturating_add(1), Value::Null);
            }
            match a.get_mut(*i) {
                Some(slot) => set_at(slot, rest, leaf),
                None => Err(format!("index {i} out of range")),
            }
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Go's `fmt.Sprintf("%+v", v)` of an unstructured value: maps with sorted keys `map[a:1 b:[x y]]`, `<nil>`,
/// integers (int64) in decimal, other numbers as `%v` prints a float64 (`2.5`, `1e+21`, `1.23456789e+08`).
fn go_format(out: &mut String, v: &Value, depth: usize) {
    if depth > MAX_DEPTH * 2 {
        out.push_str("...");
        return;
    }
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else {
                out.push_str(&syncret_template::value::format_float_g(n.as_f64().unwrap_or_default()));
            }
        }
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                go_format(out, item, depth + 1);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                if let Some(v) = m.get(k) {
                    go_format(out, v, depth + 1);
                }
            }
            out.push(']');
        }
    }
}

/// ESO's `genericTargetContentHash`: the sha3-224 of `%+v` of `spec`, or of `data` when there is no `spec`.
pub fn content_hash(obj: &Value) -> Option<String> {
    let content = [obj.get("spec"), obj.get("data")]
        .into_iter()
        .flatten()
        .find(|v| !v.is_null())?;
    let mut text = String::new();
    go_format(&mut text, content, 0);
    let digest = Sha3_224::digest(text.as_bytes());
    Some(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// Why an existing object cannot be written. None carries a value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OwnershipError {
    #[error("{kind} {name:?} is owned by another ExternalSecret {owner:?}")]
    OwnedByOther { kind: String, name: String, owner: String },
    #[error(
        "{kind} {name:?} already exists and is not managed by this ExternalSecret; delete it, or annotate the \
         ExternalSecret with {ANNOTATION_ADOPT}=true to take it over"
    )]
    NotOurs { kind: String, name: String },
}

/// What to do with the target object.
#[derive(Clone, Debug, PartialEq)]
pub enum ObjectWrite {
    /// It already holds what we would write.
    Unchanged,
    /// Server-side apply `object` (`create`: it does not exist yet).
    Apply { object: Value, create: bool },
    /// `creationPolicy: Merge` and it does not exist.
    Missing,
    /// `creationPolicy: None`.
    Skip,
}

fn str_map<'a>(o: &'a Value, path: &[&str]) -> impl Iterator<Item = (&'a String, &'a Value)> {
    let mut cur = Some(o);
    for p in path {
        cur = cur.and_then(|c| c.get(p));
    }
    cur.and_then(Value::as_object).into_iter().flat_map(|m| m.iter())
}

/// Whether `theirs` holds everything `ours` says: maps key by key (other keys may be there: other field
/// managers'), anything else equal. Deeper than [`MAX_CONTAINS_DEPTH`]: not known, so no (the object is written).
fn contains(theirs: &Value, ours: &Value, depth: usize) -> bool {
    if depth > MAX_CONTAINS_DEPTH {
        return false;
    }
    match (theirs, ours) {
        (Value::Object(t), Value::Object(o)) => o
            .iter()
            .all(|(k, v)| t.get(k).is_some_and(|tv| contains(tv, v, depth.saturating_add(1)))),
        _ => theirs == ours,
    }
}

/// Nesting [`contains`] follows (rendered documents are bounded well below it).
const MAX_CONTAINS_DEPTH: usize = 64;

fn controller_of(o: &Value) -> Option<(&str, &str)> {
    o.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .map(|r| {
            (
                r.get("kind").and_then(Value::as_str).unwrap_or_default(),
                r.get("name").and_then(Value::as_str).unwrap_or_default(),
            )
        })
}

/// Whether `existing` was written by `es`: its controller reference, its `created-by` label, its field manager, or
/// the adopt annotation on the ExternalSecret.
fn written_by(es: &ExternalSecret, existing: &Value) -> bool {
    let name = es.name_any();
    let ns = es.namespace().unwrap_or_default();
    let manager = field_manager(&name);
    controller_of(existing) == Some(("ExternalSecret", name.as_str()))
        || existing.pointer(&format!("/metadata/labels/{}", LABEL_CREATED_BY.replace('/', "~1")))
            == Some(&json!(hash::owner_label(&ns, &name)))
        || str_managers(existing).any(|m| m == manager)
        || es.annotations().get(ANNOTATION_ADOPT).is_some_and(|v| v == "true")
}

fn str_managers(o: &Value) -> impl Iterator<Item = &str> {
    o.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("manager").and_then(Value::as_str))
}

/// Plans the write of `rendered` given the existing object (`None`: it does not exist). Ownership: ESO's (no
/// object controlled by another ExternalSecret is written), plus syncret's: `Owner` and `Orphan` write only into
/// an object this ExternalSecret wrote (or is told to adopt); `Merge`/`CreateOrMerge` add their fields to
/// whatever is there.
pub fn plan(
    es: &ExternalSecret,
    k: &TargetKind,
    rendered: Rendered,
    existing: Option<&Value>,
) -> Result<ObjectWrite, OwnershipError> {
    use ExternalSecretCreationPolicy as C;
    let policy = es.spec.target.creation_policy;
    match (policy, existing) {
        (C::None, _) => return Ok(ObjectWrite::Skip),
        (C::Merge, None) => return Ok(ObjectWrite::Missing),
        _ => {}
    }
    let name = es.target_name().unwrap_or_default().to_string();
    let Some(existing) = existing else {
        return Ok(ObjectWrite::Apply {
            object: rendered.object,
            create: true,
        });
    };
    if let Some((kind, owner)) = controller_of(existing)
        && kind == "ExternalSecret"
        && owner != es.name_any()
    {
        return Err(OwnershipError::OwnedByOther {
            kind: k.kind.clone(),
            name,
            owner: owner.to_string(),
        });
    }
    if matches!(policy, C::Owner | C::Orphan) && !written_by(es, existing) {
        return Err(OwnershipError::NotOurs {
            kind: k.kind.clone(),
            name,
        });
    }
    let labels_there = str_map(&rendered.object, &["metadata", "labels"])
        .all(|(key, v)| existing.pointer("/metadata/labels").and_then(|l| l.get(key)) == Some(v));
    let annotations_there = str_map(&rendered.object, &["metadata", "annotations"])
        .all(|(key, v)| existing.pointer("/metadata/annotations").and_then(|l| l.get(key)) == Some(v));
    let owner_there = policy != C::Owner || controller_of(existing) == Some(("ExternalSecret", es.name_any().as_str()));
    let hash_there = content_hash(existing).as_deref() == Some(rendered.hash.as_str());
    // ESO's hash covers `spec` only when there is one: an object with both `spec` and `data` (a custom resource
    // written through `template.data`) must also hold every field we write.
    let content_there = (rendered.object.as_object().into_iter().flatten())
        .filter(|(key, _)| !matches!(key.as_str(), "apiVersion" | "kind" | "metadata"))
        .all(|(key, ours)| existing.get(key).is_some_and(|theirs| contains(theirs, ours, 0)));
    if labels_there && annotations_there && owner_there && hash_there && content_there {
        return Ok(ObjectWrite::Unchanged);
    }
    Ok(ObjectWrite::Apply {
        object: rendered.object,
        create: false,
    })
}

/// ESO's `isGenericTargetValid`: the object is managed and its content matches its data-hash (`Orphan`: always,
/// there is nothing to check).
pub fn is_intact(es: &ExternalSecret, existing: Option<&Value>) -> bool {
    if es.spec.target.creation_policy == ExternalSecretCreationPolicy::Orphan {
        return true;
    }
    let Some(o) = existing else { return false };
    let managed = o.pointer("/metadata/labels").and_then(|l| l.get(LABEL_MANAGED)) == Some(&json!(LABEL_MANAGED_VALUE));
    let annotated = o
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(ANNOTATION_DATA_HASH))
        .and_then(Value::as_str);
    managed && annotated.is_some() && annotated == content_hash(o).as_deref()
}

#[cfg(test)]
mod tests;
