//! `syncret render`: what ExternalSecrets and PushSecrets would produce, computed locally with the same pure code
//! the controllers use, without a cluster.
//!
//! - An ExternalSecret goes through the read plan, assembly (decoding, rewrite, conversion), the template and the
//!   write plan, and comes out as the Secret syncret would write.
//! - A PushSecret's source Secret goes through `spec.template` and the push entries (`data`, `dataTo`), and comes
//!   out as the list of what would be pushed where (store, remote key, property, value), as ESO's `esoctl
//!   template` shows the templated data.
//!
//! Inputs are files and directories of manifests ([`crate::manifests`]): the ExternalSecrets and PushSecrets to
//! render, and the stores, ConfigMaps and Secrets they use (for `templateFrom` and PushSecret sources), taken
//! from whatever is given. Remote values come from the stores' `fake` provider, or from a JSON file (`--data`)
//! for every store. Objects without a namespace are in `--namespace` (default `default`), as `kubectl apply`
//! would put them.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::core::{Selector, SelectorExt};
use serde_json::Value as Json;
use syncret_crds::externalsecret::ExternalSecret;
use syncret_crds::pushsecret::PushSecret;
use syncret_crds::secretstore::{SecretStoreSpec, StoreKind};
use syncret_providers::{RemoteValue, SecretValue};

use crate::cli::RenderArgs;
use crate::manifests::{self, Manifest, ManifestError};
use crate::push::{entries, template as push_template};
use crate::sync::desired::{self, TemplateSources};
use crate::sync::fetch::{self, Answers, Item, ReadError, StoreId};
use crate::sync::secret::{self, Write};
use syncret_template::{Delims, Template, Value};

/// (key, version) → value.
type Values = BTreeMap<(String, String), String>;

/// Why the input could not be used at all.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Manifests(#[from] ManifestError),
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--data {}: {message}", path.display())]
    Data { path: PathBuf, message: String },
    #[error("no ExternalSecret or PushSecret in the input")]
    Nothing,
    #[error("--age-identity {}: {message}", path.display())]
    Identity { path: PathBuf, message: String },
}

/// Why one object could not be rendered. Messages name fields and keys, never values.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("not a valid {kind}: {message}")]
    Parse { kind: &'static str, message: String },
    #[error("invalid ExternalSecret: {0}")]
    Invalid(String),
    #[error("invalid PushSecret: {0}")]
    InvalidPush(String),
    #[error("{kind} {name:?} is not in the input: give it with --store (or -f), or give remote values with --data")]
    StoreMissing { kind: StoreKind, name: String },
    #[error(
        "{kind} {name:?} uses the {provider} provider: only the fake provider can be rendered offline; give remote \
         values with --data"
    )]
    NotOffline {
        kind: StoreKind,
        name: String,
        provider: String,
    },
    #[error("could not get secret data: {0}")]
    Assemble(String),
    #[error("sops: {0}")]
    Sops(String),
    #[error("could not apply template: {0}")]
    Template(String),
    #[error("{0}")]
    Write(#[from] secret::WriteError),
    #[error("creationPolicy Merge: the Secret would only be merged into an existing one")]
    MergeOnly,
    #[error("creationPolicy None: nothing would be written")]
    NothingWritten,
    #[error("spec.target.manifest: generic targets are not supported by syncret")]
    GenericTarget,
    #[error("spec.selector.generatorRef: generators are not supported by syncret")]
    Generator,
    #[error("source Secret {0} is not in the input")]
    SourceMissing(String),
    #[error("no Secret in the input matches spec.selector.secret.selector")]
    NoSourceMatches,
    #[error("{0}")]
    Push(String),
    #[error("could not print the result: {0}")]
    Output(String),
}

/// The outcome: documents for stdout, and what went wrong per object (for stderr).
#[derive(Debug, Default)]
pub struct Rendered {
    pub output: String,
    pub warnings: Vec<String>,
    pub errors: Vec<(String, ObjectError)>,
}

/// A store from the input.
#[derive(Clone, Debug)]
struct Store {
    kind: StoreKind,
    namespace: Option<String>,
    name: String,
    labels: BTreeMap<String, String>,
    /// `None` for a store a PushSecret names that is not in the input.
    spec: Option<SecretStoreSpec>,
}

/// A Secret of the input (for templateFrom and as a PushSecret source): labels and data.
#[derive(Clone, Debug, Default)]
struct SourceSecret {
    labels: BTreeMap<String, String>,
    data: BTreeMap<String, Vec<u8>>,
}

/// Everything the objects may use, by namespace.
#[derive(Debug, Default)]
struct World {
    namespace: String,
    stores: Vec<Store>,
    config_maps: BTreeMap<(String, String), BTreeMap<String, String>>,
    secrets: BTreeMap<(String, String), SourceSecret>,
    data: Option<Values>,
    /// `--age-identity`: the keys a sops store decrypts with offline.
    age_identities: AgeIdentities,
}

/// Private keys: `Debug` prints how many, never the keys.
#[derive(Default)]
struct AgeIdentities(Vec<syncret_providers::sops::agekey::Identity>);

impl std::fmt::Debug for AgeIdentities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} age identities", self.0.len())
    }
}

fn ns_of(m: &Manifest, default: &str) -> String {
    m.namespace().unwrap_or(default).to_string()
}

fn parse<T: serde::de::DeserializeOwned>(m: &Manifest, kind: &'static str) -> Result<T, ObjectError> {
    serde_json::from_value(m.value.clone()).map_err(|e| ObjectError::Parse {
        kind,
        message: e.to_string(),
    })
}

fn is_eso(m: &Manifest) -> bool {
    m.group() == syncret_crds::GROUP
}

impl World {
    fn add_store(&mut self, m: &Manifest, warnings: &mut Vec<String>) {
        let kind = match m.kind() {
            "SecretStore" => StoreKind::SecretStore,
            "ClusterSecretStore" => StoreKind::ClusterSecretStore,
            _ => return,
        };
        let spec: SecretStoreSpec = match m.value.get("spec").cloned().map(serde_json::from_value) {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                warnings.push(format!("{kind} {} ({}): not used: {e}", m.name(), m.source));
                return;
            }
            None => {
                warnings.push(format!("{kind} {} ({}): not used: no spec", m.name(), m.source));
                return;
            }
        };
        let namespace = (kind == StoreKind::SecretStore).then(|| ns_of(m, &self.namespace));
        let labels = labels_of(&m.value);
        let name = m.name().to_string();
        // The same store given twice (`-f x.yaml --store x.yaml`) counts once; the last one wins.
        self.stores
            .retain(|s| !(s.kind == kind && s.name == name && s.namespace == namespace));
        self.stores.push(Store {
            kind,
            namespace,
            name,
            labels,
            spec: Some(spec),
        });
    }

    fn add_source(&mut self, m: &Manifest, warnings: &mut Vec<String>) {
        let key = (ns_of(m, &self.namespace), m.name().to_string());
        match m.kind() {
            "ConfigMap" => match serde_json::from_value::<ConfigMap>(m.value.clone()) {
                Ok(cm) => {
                    self.config_maps.insert(key, cm.data.unwrap_or_default());
                }
                Err(e) => warnings.push(format!("ConfigMap {} ({}): not used: {e}", m.name(), m.source)),
            },
            "Secret" => match serde_json::from_value::<Secret>(m.value.clone()) {
                Ok(s) => {
                    let mut data: BTreeMap<String, Vec<u8>> =
                        s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
                    data.extend(
                        s.string_data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, v.into_bytes())),
                    );
                    let labels = s.metadata.labels.unwrap_or_default();
                    self.secrets.insert(key, SourceSecret { labels, data });
                }
                Err(e) => warnings.push(format!("Secret {} ({}): not used: {e}", m.name(), m.source)),
            },
            _ => {}
        }
    }

    /// The store an ExternalSecret in `namespace` means by `id`. With a single store in the input, a name that
    /// does not match still uses it (the way `--store` always worked), with a warning.
    fn store(&self, namespace: &str, id: &StoreId, warnings: &mut Vec<String>) -> Option<&Store> {
        let exact = self.stores.iter().find(|s| {
            s.kind == id.kind
                && s.name == id.name
                && (id.kind == StoreKind::ClusterSecretStore || s.namespace.as_deref() == Some(namespace))
        });
        if exact.is_some() {
            return exact;
        }
        match self.stores.as_slice() {
            [only] => {
                warnings.push(format!(
                    "{} {:?} is not in the input; using the only store given, {} {:?}",
                    id.kind, id.name, only.kind, only.name
                ));
                Some(only)
            }
            _ => None,
        }
    }

    fn template_sources(&self, namespace: &str) -> TemplateSources {
        TemplateSources {
            config_maps: self
                .config_maps
                .iter()
                .filter(|((ns, _), _)| ns == namespace)
                .map(|((_, n), d)| (n.clone(), d.clone()))
                .collect(),
            secrets: self
                .secrets
                .iter()
                .filter(|((ns, _), _)| ns == namespace)
                .map(|((_, n), s)| (n.clone(), s.data.clone()))
                .collect(),
            versions: Vec::new(),
        }
    }
}

fn labels_of(v: &Json) -> BTreeMap<String, String> {
    v.pointer("/metadata/labels")
        .and_then(Json::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn values_from_json(path: &Path) -> Result<Values, RenderError> {
    let text = std::fs::read_to_string(path).map_err(|source| RenderError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |message: String| RenderError::Data {
        path: path.to_path_buf(),
        message,
    };
    let v: Json = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| bad("must be a JSON object of remote key → value".into()))?;
    Ok(obj
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            ((k.clone(), String::new()), text)
        })
        .collect())
}

/// The remote values a store holds offline: the fake provider's data, or a sops store's documents (from the
/// input's ConfigMaps and Secrets) decrypted with the `--age-identity` keys, for the keys `plan` reads.
fn values_from_store(store: &Store, world: &World, namespace: &str, plan: &fetch::Plan) -> Result<Values, ObjectError> {
    let provider = store.spec.as_ref().map(|s| &s.provider);
    if let Some(sops) = provider.and_then(|p| p.sops.as_deref()) {
        return sops_values(sops, world, store.namespace.as_deref().unwrap_or(namespace), plan);
    }
    let Some(fake) = provider.and_then(|p| p.fake.as_ref()) else {
        let provider = match provider.map(|p| p.kind()) {
            Some(Ok(k)) => k.key().to_string(),
            Some(Err(e)) => e.to_string(),
            None => "unknown".to_string(),
        };
        return Err(ObjectError::NotOffline {
            kind: store.kind,
            name: store.name.clone(),
            provider,
        });
    };
    Ok(fake
        .data
        .iter()
        .map(|d| ((d.key.clone(), d.version.clone()), d.value.clone()))
        .collect())
}

/// A sops store's values: each `<name>/<key>` the plan reads, found among the input's ConfigMaps (or Secrets, with
/// `sourceKind: Secret`) in the store's namespace, MAC-checked and decrypted with the `--age-identity` keys.
fn sops_values(
    spec: &syncret_crds::provider::SopsProvider,
    world: &World,
    namespace: &str,
    plan: &fetch::Plan,
) -> Result<Values, ObjectError> {
    use syncret_providers::sops::{document, keys, split_key};
    let sops_error = |m: String| ObjectError::Sops(m);
    if world.age_identities.0.is_empty() {
        return Err(sops_error(
            "the sops provider: give --age-identity keys.txt (or SOPS_AGE_KEY_FILE); KMS keys are not used offline"
                .into(),
        ));
    }
    let ring = keys::KeyRing {
        base: "--age-identity".into(),
        unwrappers: vec![Box::new(keys::AgeIdentities {
            field: "--age-identity".into(),
            identities: world.age_identities.0.clone(),
        })],
    };
    let ns = spec.namespace.as_deref().unwrap_or(namespace);
    let mut values = Values::new();
    for keys in plan.gets().values() {
        for k in keys {
            let (name, key) = split_key(&k.key).map_err(|e| sops_error(e.to_string()))?;
            let at = (ns.to_string(), name.to_string());
            let text = match spec.source_kind {
                syncret_crds::provider::sops::SopsSourceKind::Secret => world
                    .secrets
                    .get(&at)
                    .and_then(|s| s.data.get(key))
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
                _ => world.config_maps.get(&at).and_then(|d| d.get(key)).cloned(),
            };
            let Some(text) = text else { continue };
            let doc = document::Document::parse(document::Format::detect(key, &text), &text)
                .map_err(|e| sops_error(format!("{}: {}", k.key, e.into_provider(&k.key))))?;
            let data_key = futures::executor::block_on(ring.data_key(&doc.metadata, &k.key))
                .map_err(|e| sops_error(e.into_provider(&k.key).to_string()))?;
            let plain = doc
                .decrypt(&data_key)
                .map_err(|e| sops_error(e.into_provider(&k.key).to_string()))?;
            values.insert((k.key.clone(), String::new()), plain.to_json().to_string());
        }
    }
    Ok(values)
}

fn not_found(key: &str) -> ReadError {
    ReadError {
        reason: "SecretNotFound",
        message: format!("secret {key:?} does not exist"),
        not_found: true,
        retry_after: None,
    }
}

fn answers(plan: &fetch::Plan, values: &BTreeMap<StoreId, Values>) -> Answers {
    let empty = Values::new();
    let mut answers = Answers::default();
    for (store, keys) in plan.gets() {
        let values = values.get(&store).unwrap_or(&empty);
        for k in keys {
            let v = if k.fetch_metadata {
                Err(ReadError {
                    reason: "Unsupported",
                    message: "metadataPolicy: Fetch cannot be rendered offline".into(),
                    not_found: false,
                    retry_after: None,
                })
            } else {
                values
                    .get(&(k.key.clone(), k.version.clone().unwrap_or_default()))
                    .map(|v| RemoteValue::Bytes(SecretValue::from(v.as_str())))
                    .ok_or_else(|| not_found(&k.key))
            };
            answers.gets.insert((store.clone(), k), v);
        }
    }
    for item in &plan.items {
        if let Item::Find {
            index, query, store, ..
        } = item
        {
            let values = values.get(store).unwrap_or(&empty);
            let found: BTreeMap<String, SecretValue> = values
                .iter()
                .filter(|((k, _), _)| query.matches_name(k))
                .map(|((k, _), v)| (k.clone(), SecretValue::from(v.as_str())))
                .collect();
            answers.finds.insert(*index, Ok(found));
        }
    }
    for (index, _) in plan.generators() {
        answers.generated.insert(
            index,
            Err(ReadError {
                reason: "Unsupported",
                message: "generators are not run offline (syncret render makes no credentials)".into(),
                not_found: false,
                retry_after: None,
            }),
        );
    }
    answers
}

/// `rewrite[].transform`: the template engine over `.value` = the key.
fn transform(delims: &Delims) -> impl Fn(&str, &str) -> Result<String, String> + '_ {
    move |tpl: &str, k: &str| {
        let data: BTreeMap<String, Vec<u8>> = [("value".to_string(), k.as_bytes().to_vec())].into();
        Template::parse("transform", tpl, delims)
            .and_then(|t| t.execute(&Value::from_data(&data)))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| e.message)
    }
}

fn render_external_secret(
    m: &Manifest,
    world: &World,
    decode: bool,
    warnings: &mut Vec<String>,
) -> Result<Json, ObjectError> {
    let mut es: ExternalSecret = parse(m, "ExternalSecret")?;
    let namespace = ns_of(m, &world.namespace);
    es.metadata.namespace = Some(namespace.clone());
    let problems = es.spec.validate();
    if !problems.is_empty() {
        return Err(ObjectError::Invalid(syncret_crds::validate::join(&problems)));
    }
    if !es.spec.target.is_secret() {
        return Err(ObjectError::GenericTarget);
    }
    let plan = fetch::plan(&es).map_err(|e| ObjectError::Invalid(e.to_string()))?;
    let mut values = BTreeMap::new();
    for id in plan.stores() {
        let v = match &world.data {
            Some(d) => d.clone(),
            None => {
                let store = world
                    .store(&namespace, &id, warnings)
                    .ok_or_else(|| ObjectError::StoreMissing {
                        kind: id.kind,
                        name: id.name.clone(),
                    })?;
                values_from_store(store, world, &namespace, &plan)?
            }
        };
        values.insert(id, v);
    }
    let answers = answers(&plan, &values);
    let delims = Delims::default();
    let transform = transform(&delims);
    let assembled = fetch::assemble(&plan, &answers, es.spec.target.deletion_policy, &transform)
        .map_err(|e| ObjectError::Assemble(e.to_string()))?;
    for miss in &assembled.missing {
        warnings.push(format!(
            "ExternalSecret {namespace}/{}: secret does not exist using {} (key={})",
            m.name(),
            miss.field,
            miss.key
        ));
    }
    let sources = world.template_sources(&namespace);
    let desired =
        desired::desired(&es, assembled.data, &sources, &delims).map_err(|e| ObjectError::Template(e.to_string()))?;
    let target = es.target_name().unwrap_or_default().to_string();
    let mut secret = match secret::plan(&es, &target, &desired, None)? {
        Write::Apply { secret, .. } => *secret,
        Write::Missing => return Err(ObjectError::MergeOnly),
        Write::Skip | Write::Unchanged => return Err(ObjectError::NothingWritten),
    };
    secret.metadata.owner_references = None;
    let mut doc = serde_json::to_value(&secret).map_err(|e| ObjectError::Output(e.to_string()))?;
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("apiVersion".into(), "v1".into());
        obj.insert("kind".into(), "Secret".into());
        if decode {
            let data: BTreeMap<String, Vec<u8>> = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            let (text, binary) = split_text(data);
            obj.remove("data");
            if !binary.is_empty() {
                obj.insert("data".into(), binary.into());
            }
            obj.insert("stringData".into(), text.into());
        }
    }
    Ok(doc)
}

/// Values as text where they are UTF-8, base64 (as in `data`) where not.
fn split_text(data: BTreeMap<String, Vec<u8>>) -> (serde_json::Map<String, Json>, serde_json::Map<String, Json>) {
    let mut text = serde_json::Map::new();
    let mut binary = serde_json::Map::new();
    for (k, v) in data {
        match String::from_utf8(v) {
            Ok(s) => {
                text.insert(k, s.into());
            }
            Err(e) => {
                binary.insert(k, b64(e.as_bytes()).into());
            }
        }
    }
    (text, binary)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The stores a PushSecret names: by name (taken from the input when there, for its labels), or every store of
/// the input its label selector matches.
fn push_stores(
    ps: &PushSecret,
    namespace: &str,
    world: &World,
    warnings: &mut Vec<String>,
) -> Result<Vec<Store>, ObjectError> {
    let mut out: Vec<Store> = Vec::new();
    for (i, r) in ps.spec.secret_store_refs.iter().enumerate() {
        let in_scope = |s: &&Store| {
            s.kind == r.kind && (r.kind == StoreKind::ClusterSecretStore || s.namespace.as_deref() == Some(namespace))
        };
        let found: Vec<Store> = match &r.label_selector {
            Some(sel) => {
                let sel = Selector::try_from(sel.clone())
                    .map_err(|e| ObjectError::InvalidPush(format!("spec.secretStoreRefs[{i}].labelSelector: {e}")))?;
                let matched: Vec<Store> = world
                    .stores
                    .iter()
                    .filter(in_scope)
                    .filter(|s| sel.matches(&s.labels))
                    .cloned()
                    .collect();
                if matched.is_empty() {
                    warnings.push(format!(
                        "PushSecret {namespace}/{}: no {} in the input matches spec.secretStoreRefs[{i}].labelSelector",
                        ps.metadata.name.as_deref().unwrap_or_default(),
                        r.kind
                    ));
                }
                matched
            }
            None => vec![
                world
                    .stores
                    .iter()
                    .filter(in_scope)
                    .find(|s| s.name == r.name)
                    .cloned()
                    .unwrap_or_else(|| Store {
                        kind: r.kind,
                        namespace: (r.kind == StoreKind::SecretStore).then(|| namespace.to_string()),
                        name: r.name.clone(),
                        labels: BTreeMap::new(),
                        spec: None,
                    }),
            ],
        };
        for s in found {
            if !out.iter().any(|o| o.kind == s.kind && o.name == s.name) {
                out.push(s);
            }
        }
    }
    Ok(out)
}

fn render_push_secret(
    m: &Manifest,
    world: &World,
    decode: bool,
    warnings: &mut Vec<String>,
) -> Result<Json, ObjectError> {
    let ps: PushSecret = parse(m, "PushSecret")?;
    let namespace = ns_of(m, &world.namespace);
    let problems = ps.spec.validate();
    if !problems.is_empty() {
        return Err(ObjectError::InvalidPush(syncret_crds::validate::join(&problems)));
    }
    if ps.spec.selector.generator_ref.is_some() {
        return Err(ObjectError::Generator);
    }
    let sel = ps.spec.selector.secret.clone().unwrap_or_default();
    let sources: Vec<(String, BTreeMap<String, Vec<u8>>)> = if !sel.name.is_empty() {
        let source = world
            .secrets
            .get(&(namespace.clone(), sel.name.clone()))
            .ok_or_else(|| ObjectError::SourceMissing(format!("{namespace}/{}", sel.name)))?;
        vec![(sel.name.clone(), source.data.clone())]
    } else {
        let selector = sel
            .selector
            .clone()
            .ok_or_else(|| ObjectError::InvalidPush("spec.selector.secret: no name or selector".into()))
            .and_then(|s| {
                Selector::try_from(s)
                    .map_err(|e| ObjectError::InvalidPush(format!("spec.selector.secret.selector: {e}")))
            })?;
        let found: Vec<(String, BTreeMap<String, Vec<u8>>)> = world
            .secrets
            .iter()
            .filter(|((ns, _), s)| *ns == namespace && selector.matches(&s.labels))
            .map(|((_, n), s)| (n.clone(), s.data.clone()))
            .collect();
        if found.is_empty() {
            return Err(ObjectError::NoSourceMatches);
        }
        found
    };
    let stores = push_stores(&ps, &namespace, world, warnings)?;
    let delims = Delims::default();
    let transform = transform(&delims);
    let tpl_sources = world.template_sources(&namespace);
    let mut pushes = Vec::new();
    for (source_name, data) in sources {
        let data = push_template::apply(ps.spec.template.as_ref(), data, &tpl_sources, &delims)
            .map_err(ObjectError::Template)?;
        for store in &stores {
            let target = entries::Target {
                kind: store.kind,
                name: &store.name,
                labels: &store.labels,
            };
            let list = entries::entries(&ps.spec, &data, &target, &transform)
                .map_err(|e| ObjectError::Push(format!("store {} {:?}: {e}", store.kind, store.name)))?;
            for e in list {
                let mut push = serde_json::Map::new();
                push.insert("store".into(), entries::store_key(store.kind, &store.name).into());
                push.insert("source".into(), source_name.clone().into());
                if let Some(k) = &e.to.secret_key {
                    push.insert("secretKey".into(), k.clone().into());
                }
                push.insert("remoteKey".into(), e.to.remote_key.clone().into());
                if let Some(p) = &e.to.property {
                    push.insert("property".into(), p.clone().into());
                }
                let bytes = e.value.as_bytes();
                match std::str::from_utf8(bytes) {
                    Ok(text) if decode => push.insert("value".into(), text.into()),
                    _ => push.insert("valueBase64".into(), b64(bytes).into()),
                };
                if let Some(meta) = e.data.metadata.as_ref().filter(|m| !m.is_null()) {
                    push.insert("metadata".into(), meta.clone());
                }
                pushes.push(Json::Object(push));
            }
        }
    }
    Ok(serde_json::json!({
        "pushSecret": format!("{namespace}/{}", m.name()),
        "updatePolicy": ps.spec.update_policy,
        "pushes": pushes,
    }))
}

/// Renders every ExternalSecret and PushSecret of the input.
pub fn run(args: &RenderArgs) -> Result<Rendered, RenderError> {
    let mut out = Rendered::default();
    let mut world = World {
        namespace: args.namespace.clone(),
        ..Default::default()
    };
    let main = manifests::load(&args.files)?;
    let stores = manifests::load(&args.stores)?;
    let mut source_files = args.template_from.clone();
    source_files.extend(args.sops_documents.iter().cloned());
    let sources = manifests::load(&source_files)?;
    for s in main.skipped.iter().chain(&stores.skipped).chain(&sources.skipped) {
        out.warnings.push(format!("{}: skipped: {}", s.source, s.reason));
    }
    for m in main.objects.iter().chain(&stores.objects).filter(|m| is_eso(m)) {
        world.add_store(m, &mut out.warnings);
    }
    for m in main
        .objects
        .iter()
        .chain(&sources.objects)
        .filter(|m| m.group().is_empty())
    {
        world.add_source(m, &mut out.warnings);
    }
    if let Some(path) = &args.data {
        world.data = Some(values_from_json(path)?);
    }
    for p in &args.age_identity {
        let bytes = std::fs::read(p).map_err(|source| RenderError::Read {
            path: p.clone(),
            source,
        })?;
        let ids = syncret_providers::sops::agekey::parse_identities(&bytes).map_err(|e| RenderError::Identity {
            path: p.clone(),
            message: e.to_string(),
        })?;
        world.age_identities.0.extend(ids);
    }
    let mut docs = Vec::new();
    for m in main.objects.iter().filter(|m| is_eso(m)) {
        let (what, result) = match m.kind() {
            "ExternalSecret" => (
                "ExternalSecret",
                render_external_secret(m, &world, args.decode, &mut out.warnings),
            ),
            "PushSecret" => (
                "PushSecret",
                render_push_secret(m, &world, args.decode, &mut out.warnings),
            ),
            _ => continue,
        };
        let label = format!("{what} {}/{}", ns_of(m, &world.namespace), m.name());
        match result {
            Ok(doc) => docs.push((format!("{label} ({})", m.source), doc)),
            Err(e) => out.errors.push((label, e)),
        }
    }
    if docs.is_empty() && out.errors.is_empty() {
        return Err(RenderError::Nothing);
    }
    for (i, (comment, doc)) in docs.iter().enumerate() {
        if i > 0 {
            out.output.push_str("---\n");
        }
        let _ = writeln!(out.output, "# {comment}");
        match serde_yaml::to_string(doc) {
            Ok(y) => out.output.push_str(&y),
            Err(e) => out.errors.push((comment.clone(), ObjectError::Output(e.to_string()))),
        }
    }
    Ok(out)
}

/// `syncret render`: documents on stdout, warnings and per-object errors on stderr; exit status 1 when any
/// object could not be rendered.
pub fn main(args: &RenderArgs) -> anyhow::Result<std::process::ExitCode> {
    use std::io::Write as _;
    let out = run(args)?;
    std::io::stdout().write_all(out.output.as_bytes())?;
    for w in &out.warnings {
        eprintln!("warning: {w}");
    }
    for (what, e) in &out.errors {
        eprintln!("error: {what}: {e}");
    }
    Ok(if out.errors.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
    }

    fn args(files: Vec<PathBuf>) -> RenderArgs {
        RenderArgs {
            files,
            data: None,
            stores: vec![],
            template_from: vec![],
            decode: true,
            namespace: "default".into(),
            sops_documents: vec![],
            age_identity: vec![],
        }
    }

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("syncret-render-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The README's own example: the quickstart file holds a Namespace, a SecretStore and an ExternalSecret.
    #[test]
    fn renders_the_quickstart_as_the_readme_says() {
        let quick = root().join("examples/quickstart.yaml");
        let a = RenderArgs {
            stores: vec![quick.clone()],
            ..args(vec![quick.clone()])
        };
        let out = run(&a).unwrap();
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
        assert!(
            out.output
                .contains("DATABASE_URL: postgres://app:s3cr3t-from-the-store@db.demo.svc:5432/app"),
            "{}",
            out.output
        );
        assert!(out.output.contains("API_TOKEN: token-123"), "{}", out.output);
        assert!(
            out.output.contains("reconcile.external-secrets.io/data-hash"),
            "{}",
            out.output
        );
        assert!(out.output.contains("namespace: demo"), "{}", out.output);
        // The store is in the file itself: --store is not even needed.
        let out = run(&args(vec![quick.clone()])).unwrap();
        assert!(out.output.contains("API_TOKEN: token-123"), "{}", out.output);

        // --data answers every store; a key missing from it names the item, not a value.
        let dir = tmp("quick");
        std::fs::write(
            dir.join("values.json"),
            r#"{"/demo/db": {"username":"u","password":"p","host":"h"}}"#,
        )
        .unwrap();
        let a = RenderArgs {
            data: Some(dir.join("values.json")),
            decode: false,
            ..args(vec![quick])
        };
        let out = run(&a).unwrap();
        assert_eq!(out.errors.len(), 1, "{}", out.output);
        let err = out.errors[0].1.to_string();
        assert!(err.contains("spec.data[0]") || err.contains("token"), "{err}");
        assert!(!err.contains("\"p\""), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn directories_pick_stores_and_template_sources_by_namespace() {
        let dir = tmp("dir");
        std::fs::create_dir_all(dir.join("team-a")).unwrap();
        std::fs::write(
            dir.join("stores.yaml"),
            r#"
apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata: {name: shared}
spec:
  provider:
    fake:
      data:
        - {key: db, value: '{"user":"cluster"}'}
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: local, namespace: team-a}
spec:
  provider:
    fake:
      data:
        - {key: db, value: '{"user":"team-a"}'}
"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("team-a/es.yaml"),
            r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: tpl, namespace: team-a}
data:
  conf: "user={{ .user }}"
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: from-cluster, namespace: team-a}
spec:
  secretStoreRef: {name: shared, kind: ClusterSecretStore}
  target:
    template:
      templateFrom:
        - configMap: {name: tpl, items: [{key: conf}]}
  dataFrom: [{extract: {key: db}}]
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: from-local, namespace: team-a}
spec:
  secretStoreRef: {name: local}
  dataFrom: [{extract: {key: db}}]
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: elsewhere, namespace: team-b}
spec:
  secretStoreRef: {name: local}
  dataFrom: [{extract: {key: db}}]
"#,
        )
        .unwrap();
        let out = run(&args(vec![dir.clone()])).unwrap();
        assert!(out.output.contains("conf: user=cluster"), "{}", out.output);
        assert!(out.output.contains("user: team-a"), "{}", out.output);
        // team-b has no SecretStore "local": named, not guessed (there are two stores).
        assert_eq!(out.errors.len(), 1, "{:?}", out.errors);
        assert_eq!(out.errors[0].0, "ExternalSecret team-b/elsewhere");
        assert!(matches!(out.errors[0].1, ObjectError::StoreMissing { .. }));
        assert_eq!(out.output.matches("\n---\n").count(), 1, "{}", out.output);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn push_secrets_show_what_goes_where() {
        let dir = tmp("push");
        std::fs::write(
            dir.join("push.yaml"),
            r#"
apiVersion: v1
kind: Secret
metadata: {name: app-token, namespace: demo, labels: {push: "yes"}}
stringData: {token: tok-123, user: app}
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: vault, namespace: demo, labels: {tier: prod}}
spec:
  provider: {vault: {server: "https://vault.example", auth: {tokenSecretRef: {name: t, key: k}}}}
---
apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata: {name: push-token, namespace: demo}
spec:
  secretStoreRefs: [{labelSelector: {matchLabels: {tier: prod}}}]
  selector: {secret: {name: app-token}}
  template:
    data:
      token: "{{ .token | upper }}"
  data:
    - match: {secretKey: token, remoteRef: {remoteKey: apps/token, property: value}}
      metadata: {mergePolicy: Merge}
  dataTo:
    - storeRef: {name: vault}
      match: {regexp: "^user$"}
      rewrite: [{regexp: {source: "^", target: "apps/"}}]
---
apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata: {name: by-label, namespace: demo}
spec:
  secretStoreRefs: [{name: elsewhere}]
  selector: {secret: {selector: {matchLabels: {push: "yes"}}}}
  data:
    - match: {remoteRef: {remoteKey: whole}}
"#,
        )
        .unwrap();
        let out = run(&args(vec![dir.clone()])).unwrap();
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        let docs: Vec<Json> = serde_yaml::Deserializer::from_str(&out.output)
            .map(|d| serde_json::to_value(<serde_yaml::Value as serde::Deserialize>::deserialize(d).unwrap()).unwrap())
            .collect();
        assert_eq!(docs.len(), 2, "{}", out.output);
        assert_eq!(docs[0]["pushSecret"], "demo/push-token");
        let pushes = docs[0]["pushes"].as_array().unwrap();
        assert_eq!(pushes.len(), 2, "{}", out.output);
        let token = pushes.iter().find(|p| p["remoteKey"] == "apps/token").unwrap();
        assert_eq!(token["store"], "SecretStore/vault");
        assert_eq!(token["property"], "value");
        assert_eq!(token["value"], "TOK-123");
        assert_eq!(token["metadata"]["mergePolicy"], "Merge");
        let user = pushes.iter().find(|p| p["remoteKey"] == "apps/user").unwrap();
        assert_eq!(user["value"], "app");
        // The whole Secret as one JSON object, to a store not in the input (rendered by name).
        let whole = &docs[1]["pushes"][0];
        assert_eq!(whole["store"], "SecretStore/elsewhere");
        assert_eq!(whole["source"], "app-token");
        assert_eq!(whole["value"], r#"{"token":"tok-123","user":"app"}"#);

        // Not decoded: base64, as in a Secret's data.
        let out = run(&RenderArgs {
            decode: false,
            ..args(vec![dir.clone()])
        })
        .unwrap();
        assert!(
            out.output.contains(&format!("valueBase64: {}", b64(b"TOK-123"))),
            "{}",
            out.output
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_are_per_object_and_name_the_cause() {
        let dir = tmp("errors");
        std::fs::write(
            dir.join("x.yaml"),
            r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: aws}
spec: {provider: {aws: {service: SecretsManager, region: eu-west-1}}}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: needs-aws}
spec:
  secretStoreRef: {name: aws}
  data: [{secretKey: a, remoteRef: {key: k}}]
---
apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata: {name: no-source}
spec:
  secretStoreRefs: [{name: aws}]
  selector: {secret: {name: missing}}
"#,
        )
        .unwrap();
        let out = run(&args(vec![dir.clone()])).unwrap();
        let msgs: Vec<String> = out.errors.iter().map(|(w, e)| format!("{w}: {e}")).collect();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(
            msgs[0].contains("needs-aws") && msgs[0].contains("aws provider"),
            "{msgs:?}"
        );
        assert!(
            msgs[1].contains("no-source") && msgs[1].contains("default/missing"),
            "{msgs:?}"
        );
        assert!(matches!(
            run(&args(vec![root().join("deploy/crds")])),
            Err(RenderError::Nothing)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn renders_a_sealed_secret_through_a_sops_store_with_a_local_identity() {
        use age::secrecy::ExposeSecret as _;
        let dir = std::env::temp_dir().join(format!("syncret-render-sops-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let id = age::x25519::Identity::generate();
        std::fs::write(dir.join("keys.txt"), format!("{}\n", id.to_string().expose_secret())).unwrap();
        let other = age::x25519::Identity::generate();
        std::fs::write(
            dir.join("other.txt"),
            format!("{}\n", other.to_string().expose_secret()),
        )
        .unwrap();
        let seal_args = crate::cli::SealArgs {
            file: None,
            age: vec![id.to_public().to_string()],
            kms: vec![],
            store: "sops".into(),
            store_kind: "SecretStore".into(),
            configmap: None,
            namespace: Some("app".into()),
            refresh_interval: "1h".into(),
        };
        let sealed = crate::seal::seal(
            &seal_args,
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: s3cr3t\n",
            "2026-01-01T00:00:00Z",
        )
        .unwrap();
        std::fs::write(dir.join("sealed.yaml"), &sealed).unwrap();
        std::fs::write(dir.join("es.yaml"), sealed.split("\n---\n").nth(1).unwrap()).unwrap();
        std::fs::write(
            dir.join("store.yaml"),
            "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata:\n  name: sops\n  namespace: app\n\
             spec:\n  provider:\n    sops:\n      keys:\n        age:\n          - secretRef: {name: sops-age, key: keys.txt}\n",
        )
        .unwrap();
        let args = RenderArgs {
            stores: vec![dir.join("store.yaml")],
            sops_documents: vec![dir.join("sealed.yaml")],
            age_identity: vec![dir.join("keys.txt")],
            ..args(vec![dir.join("es.yaml")])
        };
        let out = run(&args).unwrap();
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert!(out.output.contains("password: s3cr3t"), "{}", out.output);
        let args = RenderArgs {
            age_identity: vec![dir.join("other.txt")],
            ..args
        };
        let err = match run(&args) {
            Ok(out) => format!("{:?}", out.errors),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("--age-identity") && !err.contains("s3cr3t"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
