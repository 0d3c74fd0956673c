//! The content of the target Secret: the fetched data shaped by `target.template`, in ESO's apply order
//! (`externalsecret_controller_template.go`):
//! 1. no template: the fetched data as is, and the ExternalSecret's own labels/annotations;
//! 2. `template.type`;
//! 3. `mergePolicy: Merge`, or a template without `data`/`templateFrom`: the raw fetched keys;
//! 4. `templateFrom` entries in order (ConfigMap, Secret, literal; `Values` or `KeysAndValues`; targets Data,
//!    Labels, Annotations; `valuesDecodingStrategy`);
//! 5. `template.data` (highest precedence);
//! 6. `template.metadata.labels`, then `.annotations`, rendered.
//!
//! Pure: the ConfigMaps/Secrets `templateFrom` names are passed in.
//!
//! Everything one ExternalSecret renders (its data context, every `templateFrom` item, every `template.data` key,
//! the labels and annotations) shares one template memory [`Budget`]; a hostile template fails with an error
//! naming its key before it can allocate more. The result is refused when its data would not fit in a Kubernetes
//! Secret (1 MiB), before anything hashes or serialises it.
use std::collections::BTreeMap;

use syncret_crds::externalsecret::{ExternalSecret, TemplateMergePolicy, TemplateScope, TemplateTarget};

use super::decode::{self, Decoding};
use syncret_template::{Budget, DEFAULT_BUDGET, Delims, Template, Value};

/// The most data a Secret may hold: the apiserver sums the lengths of the `data` values (keys not counted) and
/// refuses more than 1 MiB (`MaxSecretSize`).
pub const MAX_SECRET_DATA: usize = 1 << 20;

/// How templates render: the action delimiters and the memory budget of one ExternalSecret's render.
#[derive(Clone, Copy, Debug)]
pub struct TemplateOptions<'a> {
    pub delims: &'a Delims,
    /// Bytes all the templates of one render may allocate together ([`DEFAULT_BUDGET`] by default).
    pub budget: usize,
}

impl<'a> From<&'a Delims> for TemplateOptions<'a> {
    fn from(delims: &'a Delims) -> TemplateOptions<'a> {
        TemplateOptions {
            delims,
            budget: DEFAULT_BUDGET,
        }
    }
}

/// Annotations of the ExternalSecret never copied to its Secret.
pub(crate) const NOT_COPIED: &[&str] = &[super::refresh::LAST_APPLIED, super::refresh::RESOURCE_VERSION_MEMO];

/// The ConfigMaps and Secrets `templateFrom` reads (from the ExternalSecret's namespace).
#[derive(Clone, Debug, Default)]
pub struct TemplateSources {
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    pub secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// The version each source was read at (`None`: it did not exist), for the watch of template sources
    /// ([`crate::dependents::DependencyIndex::fingerprint_with`]).
    pub versions: Vec<(super::dependencies::ObjectRef, Option<u64>)>,
}

impl TemplateSources {
    /// The names `templateFrom` needs: (ConfigMaps, Secrets).
    pub fn needed(es: &ExternalSecret) -> (Vec<String>, Vec<String>) {
        let mut cms = Vec::new();
        let mut secrets = Vec::new();
        if let Some(t) = &es.spec.target.template {
            for from in &t.template_from {
                if let Some(cm) = &from.config_map
                    && !cms.contains(&cm.name)
                {
                    cms.push(cm.name.clone());
                }
                if let Some(s) = &from.secret
                    && !secrets.contains(&s.name)
                {
                    secrets.push(s.name.clone());
                }
            }
        }
        (cms, secrets)
    }
}

/// What this ExternalSecret wants in its target Secret (before the bookkeeping labels and annotations).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Desired {
    pub data: BTreeMap<String, Vec<u8>>,
    /// `template.type`, if set.
    pub type_: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub finalizers: Vec<String>,
}

/// A template could not be applied. The message names the field and template key; never a value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct DesiredError {
    pub field: String,
    pub message: String,
}

fn derr(field: impl Into<String>, message: impl Into<String>) -> DesiredError {
    DesiredError {
        field: field.into(),
        message: message.into(),
    }
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

/// Renders the templates of one ExternalSecret: one data context, one budget.
pub(super) struct Renderer<'a> {
    pub(super) delims: &'a Delims,
    pub(super) budget: Budget,
    pub(super) data: Value,
}

impl Renderer<'_> {
    pub(super) fn render(&self, field: &str, name: &str, src: &str) -> Result<Vec<u8>, DesiredError> {
        let t = Template::parse(name, src, self.delims).map_err(|e| derr(field, e.message))?;
        t.execute_in(&self.data, &self.budget)
            .map_err(|e| derr(field, e.message))
    }
}

/// Refuse data that the apiserver would refuse: more than [`MAX_SECRET_DATA`] bytes of values in all.
fn check_size(es: &ExternalSecret, out: &Desired) -> Result<(), DesiredError> {
    let total = out.data.values().fold(0usize, |sum, v| sum.saturating_add(v.len()));
    if total > MAX_SECRET_DATA {
        let target = es.target_name().unwrap_or_default();
        return Err(derr(
            "spec.target",
            format!(
                "the Secret {target:?} would hold {total} bytes of data; a Kubernetes Secret holds at most \
                 {MAX_SECRET_DATA} bytes (1 MiB)"
            ),
        ));
    }
    Ok(())
}

fn put(out: &mut Desired, target: TemplateTarget, key: String, value: Vec<u8>) {
    match target {
        TemplateTarget::Data => {
            out.data.insert(key, value);
        }
        TemplateTarget::Labels => {
            out.labels.insert(key, String::from_utf8_lossy(&value).into_owned());
        }
        TemplateTarget::Annotations => {
            out.annotations
                .insert(key, String::from_utf8_lossy(&value).into_owned());
        }
    }
}

/// `KeysAndValues`: the rendered text is a YAML map of strings, each pair goes to `target`.
fn apply_keys_and_values(
    out: &mut Desired,
    field: &str,
    rendered: &[u8],
    target: TemplateTarget,
    dec: Decoding,
) -> Result<(), DesiredError> {
    let map: BTreeMap<String, String> = if rendered.iter().all(u8::is_ascii_whitespace) {
        BTreeMap::new()
    } else {
        serde_yaml::from_slice(rendered).map_err(|e| {
            // serde_yaml errors quote positions, not content.
            derr(
                field,
                format!(
                    "could not unmarshal template to 'map[string][]byte': {}",
                    yaml_reason(&e)
                ),
            )
        })?
    };
    for (k, v) in map {
        let v = decode::decode(dec, v.as_bytes()).map_err(|e| {
            derr(
                field,
                format!("failed to decode rendered template value for key {k}: {e}"),
            )
        })?;
        put(out, target, k, v);
    }
    Ok(())
}

fn yaml_reason(e: &serde_yaml::Error) -> String {
    match e.location() {
        Some(l) => format!("invalid YAML at line {} column {}", l.line(), l.column()),
        None => "invalid YAML (expected a map of strings)".to_string(),
    }
}

/// Builds the desired Secret content. `fetched` is the assembled provider data; `templates` are the delimiters
/// (and the render's memory budget, [`DEFAULT_BUDGET`] when only delimiters are given).
pub fn desired<'a>(
    es: &ExternalSecret,
    fetched: BTreeMap<String, Vec<u8>>,
    sources: &TemplateSources,
    templates: impl Into<TemplateOptions<'a>>,
) -> Result<Desired, DesiredError> {
    let out = content(es, fetched, sources, templates.into())?;
    check_size(es, &out)?;
    Ok(out)
}

fn content(
    es: &ExternalSecret,
    fetched: BTreeMap<String, Vec<u8>>,
    sources: &TemplateSources,
    templates: TemplateOptions<'_>,
) -> Result<Desired, DesiredError> {
    let Some(tpl) = &es.spec.target.template else {
        let labels = es.metadata.labels.clone().unwrap_or_default();
        let mut annotations = es.metadata.annotations.clone().unwrap_or_default();
        annotations.retain(|k, _| !NOT_COPIED.contains(&k.as_str()));
        return Ok(Desired {
            data: fetched,
            type_: None,
            labels,
            annotations,
            finalizers: Vec::new(),
        });
    };
    let mut out = Desired {
        data: BTreeMap::new(),
        type_: Some(tpl.type_.clone()).filter(|t| !t.is_empty()),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        finalizers: tpl.metadata.finalizers.clone(),
    };
    let no_templates = tpl.data.is_empty() && tpl.template_from.is_empty();
    if tpl.merge_policy == TemplateMergePolicy::Merge || no_templates {
        out.data.extend(fetched.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let budget = Budget::new(templates.budget);
    let data = Value::from_data_in(&fetched, &budget).map_err(|e| {
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
        let target = TemplateTarget::parse(&from.target).ok_or_else(|| {
            derr(
                format!("{base}.target"),
                format!("unknown target {:?} for a Secret", from.target),
            )
        })?;
        let dec = decoding(from.values_decoding_strategy());
        if let Some(cm) = &from.config_map {
            let data = sources.config_maps.get(&cm.name).ok_or_else(|| {
                derr(
                    format!("{base}.configMap.name"),
                    format!("ConfigMap {:?} not found", cm.name),
                )
            })?;
            for (j, item) in cm.items.iter().enumerate() {
                let field = format!("{base}.configMap.items[{j}]");
                let src = data.get(&item.key).ok_or_else(|| {
                    derr(
                        &field,
                        format!("error in configmap {}: missing key {}", cm.name, item.key),
                    )
                })?;
                render_item(&r, &mut out, &field, &item.key, src, item.template_as, target, dec)?;
            }
        }
        if let Some(sec) = &from.secret {
            let data = sources.secrets.get(&sec.name).ok_or_else(|| {
                derr(
                    format!("{base}.secret.name"),
                    format!("Secret {:?} not found", sec.name),
                )
            })?;
            for (j, item) in sec.items.iter().enumerate() {
                let field = format!("{base}.secret.items[{j}]");
                let src = data.get(&item.key).ok_or_else(|| {
                    derr(
                        &field,
                        format!("error in secret {}: missing key {}", sec.name, item.key),
                    )
                })?;
                let src = std::str::from_utf8(src).map_err(|_| derr(&field, "template is not UTF-8"))?;
                render_item(&r, &mut out, &field, &item.key, src, item.template_as, target, dec)?;
            }
        }
        if let Some(literal) = &from.literal {
            let field = format!("{base}.literal");
            let rendered = r.render(&field, &field, literal)?;
            apply_keys_and_values(&mut out, &field, &rendered, target, dec)?;
        }
    }
    for (k, src) in &tpl.data {
        let field = format!("spec.target.template.data[{k}]");
        out.data.insert(k.clone(), r.render(&field, k, src)?);
    }
    for (k, src) in &tpl.metadata.labels {
        let field = format!("spec.target.template.metadata.labels[{k}]");
        out.labels.insert(
            k.clone(),
            String::from_utf8_lossy(&r.render(&field, k, src)?).into_owned(),
        );
    }
    for (k, src) in &tpl.metadata.annotations {
        let field = format!("spec.target.template.metadata.annotations[{k}]");
        out.annotations.insert(
            k.clone(),
            String::from_utf8_lossy(&r.render(&field, k, src)?).into_owned(),
        );
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn render_item(
    r: &Renderer<'_>,
    out: &mut Desired,
    field: &str,
    key: &str,
    src: &str,
    scope: TemplateScope,
    target: TemplateTarget,
    dec: Decoding,
) -> Result<(), DesiredError> {
    match scope {
        TemplateScope::Values => {
            let v = r.render(field, key, src)?;
            let v = decode::decode(dec, &v).map_err(|e| {
                derr(
                    field,
                    format!("failed to decode rendered template value for key {key}: {e}"),
                )
            })?;
            put(out, target, key.to_string(), v);
            Ok(())
        }
        TemplateScope::KeysAndValues => {
            let rendered = r.render(field, key, src)?;
            apply_keys_and_values(out, field, &rendered, target, dec)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn es(yaml: &str) -> ExternalSecret {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    fn text(m: &BTreeMap<String, Vec<u8>>) -> BTreeMap<&str, &str> {
        m.iter()
            .map(|(k, v)| (k.as_str(), std::str::from_utf8(v).unwrap()))
            .collect()
    }

    #[test]
    fn no_template_copies_data_and_metadata() {
        let e = es(r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: db
  namespace: app
  labels: {team: a}
  annotations: {note: x, kubectl.kubernetes.io/last-applied-configuration: "{}"}
spec: {secretStoreRef: {name: s}}
"#);
        let d = desired(&e, data(&[("a", "1")]), &TemplateSources::default(), &Delims::default()).unwrap();
        assert_eq!(text(&d.data), [("a", "1")].into());
        assert_eq!(d.labels, [("team".to_string(), "a".to_string())].into());
        assert_eq!(d.annotations.keys().collect::<Vec<_>>(), ["note"]);
        assert_eq!(d.type_, None);
    }

    #[test]
    fn template_order_and_targets() {
        let e = es(r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: db, namespace: app, labels: {not: copied}}
spec:
  secretStoreRef: {name: s}
  target:
    template:
      type: kubernetes.io/basic-auth
      mergePolicy: Merge
      metadata:
        labels: {app: "{{ .user }}"}
        annotations: {checksum: "{{ .password | sha256sum | trunc 8 }}"}
      templateFrom:
      - configMap:
          name: tpl
          items:
          - {key: config.yaml}
          - {key: more, templateAs: KeysAndValues}
      - literal: "lit: {{ .user }}-lit"
        target: Annotations
      - secret:
          name: stpl
          items:
          - {key: b64, templateAs: Values}
        valuesDecodingStrategy: Base64
      data:
        password: "override-{{ .password }}"
"#);
        let mut sources = TemplateSources::default();
        sources.config_maps.insert(
            "tpl".into(),
            [
                ("config.yaml".to_string(), "user: {{ .user }}".to_string()),
                ("more".to_string(), "k1: '{{ .user }}'\nk2: v2".to_string()),
            ]
            .into(),
        );
        sources.secrets.insert(
            "stpl".into(),
            [("b64".to_string(), b"{{ .user | b64enc }}".to_vec())].into(),
        );
        let d = desired(
            &e,
            data(&[("user", "admin"), ("password", "pw")]),
            &sources,
            &Delims::default(),
        )
        .unwrap();
        assert_eq!(
            text(&d.data),
            [
                ("user", "admin"),
                ("password", "override-pw"),
                ("config.yaml", "user: admin"),
                ("k1", "admin"),
                ("k2", "v2"),
                ("b64", "admin")
            ]
            .into()
        );
        assert_eq!(d.type_.as_deref(), Some("kubernetes.io/basic-auth"));
        assert_eq!(d.labels, [("app".to_string(), "admin".to_string())].into());
        assert_eq!(d.annotations["lit"], "admin-lit");
        assert_eq!(d.annotations["checksum"].len(), 8);
    }

    #[test]
    fn replace_policy_drops_raw_keys_and_errors_name_the_key() {
        let e = es(r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: db, namespace: app}
spec:
  secretStoreRef: {name: s}
  target:
    template:
      data:
        url: "postgres://{{ .user }}:{{ .password }}@{{ .host }}/db"
"#);
        let got = desired(
            &e,
            data(&[("user", "u"), ("password", "s3cr3t")]),
            &TemplateSources::default(),
            &Delims::default(),
        )
        .unwrap_err();
        assert_eq!(got.field, "spec.target.template.data[url]");
        assert!(
            got.message.contains(r#"map has no entry for key "host""#),
            "{}",
            got.message
        );
        assert!(!got.to_string().contains("s3cr3t"));
        let ok = desired(
            &e,
            data(&[("user", "u"), ("password", "p"), ("host", "h")]),
            &TemplateSources::default(),
            &Delims::default(),
        )
        .unwrap();
        assert_eq!(text(&ok.data), [("url", "postgres://u:p@h/db")].into());
    }

    #[test]
    fn missing_template_sources_name_the_field() {
        let e = es(r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: db, namespace: app}
spec:
  secretStoreRef: {name: s}
  target:
    template:
      templateFrom:
      - configMap: {name: nope, items: [{key: a}]}
"#);
        let got = desired(&e, BTreeMap::new(), &TemplateSources::default(), &Delims::default()).unwrap_err();
        assert_eq!(got.field, "spec.target.template.templateFrom[0].configMap.name");
        assert_eq!(TemplateSources::needed(&e), (vec!["nope".to_string()], vec![]));
    }

    /// Four keys of 16 MB each (issue 22): one budget for the whole ExternalSecret stops the second key, by name.
    #[test]
    fn all_keys_of_an_external_secret_share_one_budget() {
        let e = es(r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: hostile, namespace: app}
spec:
  secretStoreRef: {name: s}
  target:
    template:
      data:
        a: '{{ repeat 16000000 "A" }}'
        b: '{{ repeat 16000000 "A" }}'
        c: '{{ repeat 16000000 "A" }}'
        d: '{{ repeat 16000000 "A" }}'
"#);
        let got = desired(&e, data(&[("k", "v")]), &TemplateSources::default(), &Delims::default()).unwrap_err();
        assert_eq!(got.field, "spec.target.template.data[b]", "{got}");
        assert!(got.message.contains("memory budget of 41943040 bytes"), "{got}");
        // A bigger budget lets the keys render, and the 1 MiB Secret limit names the target instead.
        let opts = TemplateOptions {
            delims: &Delims::default(),
            budget: 256 << 20,
        };
        let got = desired(&e, data(&[("k", "v")]), &TemplateSources::default(), opts).unwrap_err();
        assert_eq!(got.field, "spec.target");
        assert!(
            got.message
                .contains(r#"the Secret "hostile" would hold 64000000 bytes"#),
            "{got}"
        );
        // The same ExternalSecret with one small key is fine.
        let ok = es(r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: fine, namespace: app}
spec:
  secretStoreRef: {name: s}
  target:
    template:
      data:
        a: '{{ repeat 1000 "A" }}'
"#);
        let d = desired(
            &ok,
            data(&[("k", "v")]),
            &TemplateSources::default(),
            &Delims::default(),
        )
        .unwrap();
        assert_eq!(d.data["a"].len(), 1000);
    }

    #[test]
    fn a_hostile_list_fails_naming_the_key_and_template_from_counts_too() {
        let e = es(r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: hostile, namespace: app}
spec:
  secretStoreRef: {name: s}
  target:
    template:
      templateFrom:
      - literal: 'x: {{ len (until 400000) }}'
      data:
        n: '{{ len (until 16777216) }}'
"#);
        let got = desired(&e, data(&[("k", "v")]), &TemplateSources::default(), &Delims::default()).unwrap_err();
        assert_eq!(got.field, "spec.target.template.data[n]", "{got}");
        assert!(got.message.contains("memory budget"), "{got}");
        // templateFrom used part of the same budget: with room for only the literal's list, the key fails.
        let opts = TemplateOptions {
            delims: &Delims::default(),
            budget: 20 << 20,
        };
        let small = es(r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: two, namespace: app}
spec:
  secretStoreRef: {name: s}
  target:
    template:
      templateFrom:
      - literal: 'x: {{ len (until 400000) }}'
      data:
        n: '{{ len (until 400000) }}'
"#);
        let got = desired(&small, data(&[("k", "v")]), &TemplateSources::default(), opts).unwrap_err();
        assert_eq!(got.field, "spec.target.template.data[n]", "{got}");
        let alone = es(r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: one, namespace: app}
spec:
  secretStoreRef: {name: s}
  target:
    template:
      data:
        n: '{{ len (until 400000) }}'
"#);
        let d = desired(&alone, data(&[("k", "v")]), &TemplateSources::default(), opts).unwrap();
        assert_eq!(d.data["n"], b"400000");
    }

    #[test]
    fn data_without_a_template_is_size_checked_too() {
        let e = es(r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: big, namespace: app}
spec:
  secretStoreRef: {name: s}
  target: {name: big-secret}
"#);
        let mut fetched = BTreeMap::new();
        fetched.insert("a".to_string(), vec![b'x'; 600 << 10]);
        fetched.insert("b".to_string(), vec![b'x'; 600 << 10]);
        let got = desired(&e, fetched.clone(), &TemplateSources::default(), &Delims::default()).unwrap_err();
        assert_eq!(got.field, "spec.target");
        assert!(
            got.message.contains(r#""big-secret" would hold 1228800 bytes"#),
            "{got}"
        );
        fetched.remove("b");
        assert!(desired(&e, fetched, &TemplateSources::default(), &Delims::default()).is_ok());
    }
}
