//! The checks of [`super::check`], object by object, then across objects (which store an ExternalSecret uses)
//! and against the cluster facts (existing Secrets, Namespaces, CRDs).
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;
use syncret_crds::externalsecret::{
    ExternalSecret, ExternalSecretCreationPolicy, ExternalSecretSpec, ExternalSecretTemplate,
};
use syncret_crds::labels::{FINALIZER_CES_NAMESPACE_PREFIX, LABEL_CREATED_BY, LABEL_MANAGED};
use syncret_crds::provider::ESO_PROVIDER_KEYS;
use syncret_crds::pushsecret::PushSecretSpec;
use syncret_crds::secretstore::{SecretStoreSpec, StoreKind};
use syncret_crds::{ClusterExternalSecret, ClusterPushSecret, PushSecret};

use super::rules::{self, DIFFERENCES, UNSUPPORTED};
use super::schema::{self, Issue};
use super::{Facts, Finding, Input, Level, ObjectReport, Settings, Verdict, verdict};
use crate::sync::secret::{self as write, ANNOTATION_ADOPT, WriteError};
use crate::sync::{fetch, hash};
use syncret_template::{Delims, Template};

/// The API group of ESO's generators (none of which syncret serves).
pub const GENERATORS_GROUP: &str = "generators.external-secrets.io";

/// Where the side-by-side route is described.
const ROUTE: &str = "docs/migration.md, \"Side by side, store by store\"";

/// A kind syncret serves, from its generated CRDs.
struct Known {
    kind: String,
    plural: String,
    namespaced: bool,
    served: Vec<String>,
    /// Version → openAPIV3Schema.
    schemas: BTreeMap<String, Value>,
}

fn known_kinds() -> Vec<Known> {
    syncret_crds::generate::crds()
        .into_iter()
        .map(|crd| Known {
            kind: crd.spec.names.kind.clone(),
            plural: crd.spec.names.plural.clone(),
            namespaced: crd.spec.scope == "Namespaced",
            served: crd
                .spec
                .versions
                .iter()
                .filter(|v| v.served)
                .map(|v| v.name.clone())
                .collect(),
            schemas: crd
                .spec
                .versions
                .iter()
                .filter_map(|v| {
                    let s = v.schema.as_ref()?.open_api_v3_schema.as_ref()?;
                    Some((v.name.clone(), serde_json::to_value(s).ok()?))
                })
                .collect(),
        })
        .collect()
}

fn finding(level: Level, field: impl Into<String>, message: impl Into<String>, action: Option<&str>) -> Finding {
    Finding {
        level,
        field: field.into(),
        message: message.into(),
        action: action.map(str::to_string),
    }
}

/// `a` is `b` or a field inside it (at a segment boundary).
fn within(a: &str, b: &str) -> bool {
    a == b || (a.starts_with(b) && matches!(a.as_bytes().get(b.len()), Some(b'.') | Some(b'[')))
}

/// Keeps the first finding for a field: a later one of the same level at the same field, or inside or around
/// it, says the same thing again (a rule and the plan both refusing a generatorRef, say).
fn dedupe(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for f in findings {
        let dup = out
            .iter()
            .any(|o| o.level == f.level && (within(&o.field, &f.field) || within(&f.field, &o.field)));
        if !dup {
            out.push(f);
        }
    }
    out
}

/// What one object is, once parsed, for the checks across objects.
enum Parsed {
    Store {
        kind: StoreKind,
        spec: Box<SecretStoreSpec>,
    },
    ExternalSecret(Box<ExternalSecret>),
    ClusterExternalSecret(Box<ClusterExternalSecret>),
    PushSecret(Box<PushSecret>),
    ClusterPushSecret(Box<ClusterPushSecret>),
    Other,
}

/// One object on its way through the checks.
struct Checked {
    report: ObjectReport,
    parsed: Parsed,
}

type ConfigMaps = BTreeMap<(String, String), BTreeMap<String, String>>;

struct Ctx<'a> {
    known: Vec<Known>,
    registry: Vec<&'static str>,
    config_maps: ConfigMaps,
    settings: &'a Settings,
}

pub(super) fn check_all(inputs: &[Input], facts: &Facts, settings: &Settings) -> Vec<ObjectReport> {
    let mut ctx = Ctx {
        known: known_kinds(),
        registry: syncret_providers::Registry::with_default_providers().keys(),
        config_maps: ConfigMaps::new(),
        settings,
    };
    for i in inputs {
        if i.value.get("kind").and_then(Value::as_str) == Some("ConfigMap")
            && i.value.get("apiVersion").and_then(Value::as_str) == Some("v1")
            && let Ok(cm) = serde_json::from_value::<k8s_openapi::api::core::v1::ConfigMap>(i.value.clone())
        {
            let ns = cm
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| settings.default_namespace.clone());
            ctx.config_maps.insert(
                (ns, cm.metadata.name.clone().unwrap_or_default()),
                cm.data.unwrap_or_default(),
            );
        }
    }
    let mut checked: Vec<Checked> = inputs
        .iter()
        .filter(|i| {
            let g = group(&i.value);
            g == syncret_crds::GROUP || g == GENERATORS_GROUP
        })
        .map(|i| check_one(&ctx, i))
        .collect();
    across(&mut checked, facts, &ctx);
    checked
        .into_iter()
        .map(|mut c| {
            c.report.findings = dedupe(std::mem::take(&mut c.report.findings));
            c.report.verdict = verdict(&c.report.findings);
            c.report
        })
        .collect()
}

fn group(v: &Value) -> &str {
    v.get("apiVersion")
        .and_then(Value::as_str)
        .and_then(|a| a.rsplit_once('/'))
        .map(|(g, _)| g)
        .unwrap_or_default()
}

/// A `generators.external-secrets.io` object: the kinds syncret runs are checked like the operator checks them
/// (a spec that cannot work names its field); the others are not supported.
fn check_generator(v: &Value, kind: &str, f: &mut Vec<Finding>) {
    use syncret_crds::externalsecret::GeneratorKind;
    if kind == "GeneratorState" {
        return;
    }
    let unsupported = |f: &mut Vec<Finding>, what: &str| {
        f.push(finding(
            Level::Unsupported,
            "kind",
            format!("syncret does not run {what} generators"),
            Some(
                "keep the generator and the ExternalSecrets and PushSecrets using it on ESO, or replace it with a \
                 value kept in a store",
            ),
        ))
    };
    let Ok(k) = serde_json::from_value::<GeneratorKind>(Value::String(kind.to_string())) else {
        unsupported(f, kind);
        return;
    };
    if !k.is_supported() {
        unsupported(f, kind);
        return;
    }
    let spec = v.get("spec").cloned().unwrap_or_else(|| serde_json::json!({}));
    let name = v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let ns = v.pointer("/metadata/namespace").and_then(Value::as_str);
    match crate::generate::resolve_object(k, name, ns.unwrap_or_default(), ns, spec) {
        Ok(r) => {
            for p in r.info.generator.validate(r.info.base) {
                f.push(finding(
                    Level::Unsupported,
                    p.path,
                    p.message,
                    Some("fix the generator's spec"),
                ));
            }
        }
        Err(syncret_providers::ProviderError::InvalidConfig { field, message })
            if message.contains("not supported by syncret") =>
        {
            let _ = field;
            unsupported(f, &message);
        }
        Err(e) => f.push(finding(
            Level::Unsupported,
            "spec",
            e.to_string(),
            Some("fix the generator's spec"),
        )),
    }
}

fn check_one(ctx: &Ctx<'_>, input: &Input) -> Checked {
    let v = &input.value;
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
    let api_version = v
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let version = api_version.rsplit_once('/').map(|(_, v)| v).unwrap_or_default();
    let name = v
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let known = ctx
        .known
        .iter()
        .find(|k| k.kind == kind && group(v) == syncret_crds::GROUP);
    let namespace = v
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .or_else(|| {
            known
                .is_some_and(|k| k.namespaced)
                .then(|| ctx.settings.default_namespace.clone())
        });
    let mut report = ObjectReport {
        kind: kind.clone(),
        api_version: api_version.clone(),
        namespace,
        name,
        source: input.source.clone(),
        verdict: Verdict::Supported,
        findings: Vec::new(),
    };
    if group(v) == GENERATORS_GROUP {
        check_generator(v, &kind, &mut report.findings);
        return Checked {
            report,
            parsed: Parsed::Other,
        };
    }
    let Some(known) = known else {
        let (message, action) = { (format!("syncret does not serve the {kind} kind"), "keep it on ESO") };
        report
            .findings
            .push(finding(Level::Unsupported, "kind", message, Some(action)));
        return Checked {
            report,
            parsed: Parsed::Other,
        };
    };
    let f = &mut report.findings;
    if !known.served.iter().any(|s| s == version) {
        f.push(finding(
            Level::Unsupported,
            "apiVersion",
            format!(
                "{api_version} is not served by syncret ({} serves {})",
                known.kind,
                known.served.join(", ")
            ),
            Some(&format!(
                "change apiVersion to external-secrets.io/{}: the fields are the same (ESO stopped serving \
                 v1beta1 in v0.17)",
                known.served.first().map(String::as_str).unwrap_or("v1")
            )),
        ));
    }
    let schema = known
        .schemas
        .get(version)
        .or_else(|| known.served.first().and_then(|s| known.schemas.get(s)));
    let issues = schema.map(|s| schema::issues(s, v)).unwrap_or_default();
    // Values outside an enum are reported here; the rest is still read and checked without them.
    let readable = schema::without_bad_values(v, &issues);
    for issue in issues {
        f.push(schema_finding(ctx, &kind, issue));
    }
    // The rules are about the spec (of the ExternalSecret / PushSecret inside the Cluster kinds).
    let (spec, prefix) = match kind.as_str() {
        "ClusterExternalSecret" => (v.pointer("/spec/externalSecretSpec"), "spec.externalSecretSpec"),
        "ClusterPushSecret" => (v.pointer("/spec/pushSecretSpec"), "spec.pushSecretSpec"),
        _ => (v.get("spec"), "spec"),
    };
    if let Some(spec) = spec {
        f.extend(rules::apply(UNSUPPORTED, &kind, spec, prefix));
        f.extend(rules::apply(DIFFERENCES, &kind, spec, prefix));
    }
    let parsed = match typed(ctx, &kind, &report, &readable) {
        Ok((parsed, findings)) => {
            report.findings.extend(findings);
            parsed
        }
        Err(e) => {
            report.findings.push(finding(
                Level::Unsupported,
                "spec",
                format!("syncret cannot read this {kind}: {e}"),
                Some("fix the manifest; syncret would report the same on the object"),
            ));
            Parsed::Other
        }
    };
    Checked { report, parsed }
}

fn schema_finding(ctx: &Ctx<'_>, kind: &str, issue: Issue) -> Finding {
    match issue {
        Issue::Unknown { path } => {
            if let Some(key) = path
                .strip_prefix("spec.provider.")
                .filter(|_| rules::STORES.contains(&kind))
            {
                let message = if ESO_PROVIDER_KEYS.contains(&key) {
                    format!("the {key} provider is not implemented by syncret")
                } else {
                    format!("{key:?} is not a provider syncret or ESO knows")
                };
                return finding(
                    Level::Unsupported,
                    path.clone(),
                    message,
                    Some(&format!(
                        "keep this store and the ExternalSecrets and PushSecrets using it on ESO ({ROUTE}), or move \
                         the secrets to a provider syncret implements ({})",
                        ctx.registry.join(", ")
                    )),
                );
            }
            finding(
                Level::Unsupported,
                path,
                "syncret's CRD has no such field: the API server would drop it (or reject the object under strict \
                 field validation)",
                Some("remove the field if it is not needed, or keep this object on ESO"),
            )
        }
        Issue::NotInEnum { path, allowed, .. } => finding(
            Level::Unsupported,
            path,
            format!("value not supported (syncret takes {})", allowed.join(", ")),
            Some("use one of the values syncret takes, or keep this object on ESO"),
        ),
    }
}

fn parse<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, String> {
    serde_json::from_value(v.clone()).map_err(|e| e.to_string())
}

fn invalid(errors: Vec<syncret_crds::FieldError>) -> Vec<Finding> {
    errors
        .into_iter()
        .map(|e| {
            finding(
                Level::Unsupported,
                e.path,
                format!("invalid: {}", e.message),
                Some("fix the manifest; syncret sets Ready=False with this message (ESO's webhook rejects most of these)"),
            )
        })
        .collect()
}

/// Parses the object with syncret's types and runs the checks the controllers would.
fn typed(ctx: &Ctx<'_>, kind: &str, report: &ObjectReport, v: &Value) -> Result<(Parsed, Vec<Finding>), String> {
    let ns = report.namespace.clone().unwrap_or_default();
    let mut f = Vec::new();
    let parsed = match kind {
        "SecretStore" | "ClusterSecretStore" => {
            let spec: SecretStoreSpec = parse(v.get("spec").unwrap_or(&Value::Null))?;
            f.extend(invalid(spec.validate()));
            if let Ok(k) = spec.provider.kind()
                && !ctx.registry.contains(&k.key())
            {
                f.push(finding(
                    Level::Unsupported,
                    format!("spec.provider.{}", k.key()),
                    format!("the {} provider is not compiled into this syncret build", k.key()),
                    Some("use a build with all providers (the default), or keep this store on ESO"),
                ));
            }
            if spec.controller.is_empty() && ctx.settings.controller_class != "default" {
                f.push(finding(
                    Level::Difference,
                    "spec.controller",
                    format!(
                        "no controller class: every controller processes it, ESO and a syncret started with \
                         --controller-class={} alike, and both would write its Secrets",
                        ctx.settings.controller_class
                    ),
                    Some("set spec.controller to ESO's class (\"default\") while ESO keeps it, to syncret's when it moves"),
                ));
            }
            if !spec.controller.is_empty() && spec.controller != ctx.settings.controller_class {
                f.push(finding(
                    Level::Note,
                    "spec.controller",
                    format!(
                        "controller class {:?}: a syncret started with --controller-class={} leaves this store (and \
                         what uses it) alone",
                        spec.controller, ctx.settings.controller_class
                    ),
                    Some("nothing to do while it belongs to another controller; see the controller-class route"),
                ));
            }
            let kind = if kind == "SecretStore" {
                StoreKind::SecretStore
            } else {
                StoreKind::ClusterSecretStore
            };
            Parsed::Store {
                kind,
                spec: Box::new(spec),
            }
        }
        "ExternalSecret" => {
            let mut es: ExternalSecret = parse(v)?;
            es.metadata.namespace = Some(ns.clone());
            f.extend(invalid(es.spec.validate()));
            es_spec(ctx, &es, "spec", &ns, &mut f);
            Parsed::ExternalSecret(Box::new(es))
        }
        "ClusterExternalSecret" => {
            let ces: ClusterExternalSecret = parse(v)?;
            f.extend(invalid(ces.spec.validate()));
            let mut es = ExternalSecret::new(&report.name, ces.spec.external_secret_spec.clone());
            es.metadata.namespace = Some(ctx.settings.default_namespace.clone());
            es_spec(ctx, &es, "spec.externalSecretSpec", "", &mut f);
            Parsed::ClusterExternalSecret(Box::new(ces))
        }
        "PushSecret" => {
            let ps: PushSecret = parse(v)?;
            f.extend(invalid(ps.spec.validate()));
            ps_spec(ctx, &ps.spec, "spec", &ns, &mut f);
            Parsed::PushSecret(Box::new(ps))
        }
        "ClusterPushSecret" => {
            let cps: ClusterPushSecret = parse(v)?;
            f.extend(invalid(cps.spec.validate()));
            ps_spec(ctx, &cps.spec.push_secret_spec, "spec.pushSecretSpec", "", &mut f);
            Parsed::ClusterPushSecret(Box::new(cps))
        }
        _ => Parsed::Other,
    };
    Ok((parsed, f))
}

/// Checks an ExternalSecret spec (at `base`): the read plan and every template.
fn es_spec(ctx: &Ctx<'_>, es: &ExternalSecret, base: &str, ns: &str, f: &mut Vec<Finding>) {
    if let Err(e) = fetch::plan(es) {
        let field = match e.field.strip_prefix("spec") {
            Some(rest) => format!("{base}{rest}"),
            None => e.field.clone(),
        };
        f.push(finding(
            Level::Unsupported,
            field,
            e.message,
            Some("syncret sets Ready=False with this message; keep this ExternalSecret on ESO if it needs it"),
        ));
    }
    let spec: &ExternalSecretSpec = &es.spec;
    if let Some(t) = &spec.target.template {
        templates(ctx, t, &format!("{base}.target.template"), ns, f);
    }
    for (i, d) in spec.data_from.iter().enumerate() {
        for (j, r) in d.rewrite.iter().enumerate() {
            if let Some(t) = &r.transform {
                parse_template(
                    &format!("{base}.dataFrom[{i}].rewrite[{j}].transform.template"),
                    &t.template,
                    f,
                );
            }
        }
    }
}

/// Checks a PushSecret spec (at `base`): its template and rewrite templates.
fn ps_spec(ctx: &Ctx<'_>, spec: &PushSecretSpec, base: &str, ns: &str, f: &mut Vec<Finding>) {
    if let Some(t) = &spec.template {
        templates(ctx, t, &format!("{base}.template"), ns, f);
    }
    for (i, d) in spec.data_to.iter().enumerate() {
        for (j, r) in d.rewrite.iter().enumerate() {
            if let Some(t) = &r.transform {
                parse_template(
                    &format!("{base}.dataTo[{i}].rewrite[{j}].transform.template"),
                    &t.template,
                    f,
                );
            }
        }
    }
}

/// Every template of `t` through syncret's parser; `templateFrom` ConfigMaps when they are among the objects.
fn templates(ctx: &Ctx<'_>, t: &ExternalSecretTemplate, base: &str, ns: &str, f: &mut Vec<Finding>) {
    for (k, src) in &t.data {
        parse_template(&format!("{base}.data[{k}]"), src, f);
    }
    for (k, src) in &t.metadata.labels {
        parse_template(&format!("{base}.metadata.labels[{k}]"), src, f);
    }
    for (k, src) in &t.metadata.annotations {
        parse_template(&format!("{base}.metadata.annotations[{k}]"), src, f);
    }
    for (i, from) in t.template_from.iter().enumerate() {
        if let Some(l) = &from.literal {
            parse_template(&format!("{base}.templateFrom[{i}].literal"), l, f);
        }
        if let Some(cm) = &from.config_map
            && let Some(data) = ctx.config_maps.get(&(ns.to_string(), cm.name.clone()))
        {
            for item in &cm.items {
                if let Some(src) = data.get(&item.key) {
                    parse_template(
                        &format!(
                            "{base}.templateFrom[{i}].configMap (ConfigMap {}, key {})",
                            cm.name, item.key
                        ),
                        src,
                        f,
                    );
                }
            }
        }
    }
}

fn parse_template(field: &str, src: &str, f: &mut Vec<Finding>) {
    if let Err(e) = Template::parse(field, src, &Delims::default()) {
        let missing_function = e.message.contains("function") && e.message.contains("not defined");
        f.push(finding(
            Level::Unsupported,
            field,
            format!("the template does not parse in syncret: {}", e.message),
            Some(if missing_function {
                "docs/design.md (Template engine) lists the functions syncret leaves out; rewrite the template \
                 without it, or keep this object on ESO"
            } else {
                "fix the template (ESO's engine would refuse it too)"
            }),
        ));
    }
}

/// A store as the objects that use it see it.
struct StoreSeen {
    verdict: Verdict,
    class: String,
}

fn store_refs(spec: &ExternalSecretSpec, base: &str) -> Vec<(String, StoreKind, String)> {
    let mut out = Vec::new();
    if let Some(r) = spec.secret_store_ref.as_ref().filter(|r| !r.name.is_empty()) {
        out.push((format!("{base}.secretStoreRef"), r.kind(), r.name.clone()));
    }
    for (i, d) in spec.data.iter().enumerate() {
        if let Some(r) = d.source_ref.as_ref().and_then(|s| s.secret_store_ref.as_ref()) {
            out.push((format!("{base}.data[{i}].sourceRef.storeRef"), r.kind(), r.name.clone()));
        }
    }
    for (i, d) in spec.data_from.iter().enumerate() {
        if let Some(r) = d.source_ref.as_ref().and_then(|s| s.secret_store_ref.as_ref()) {
            out.push((
                format!("{base}.dataFrom[{i}].sourceRef.storeRef"),
                r.kind(),
                r.name.clone(),
            ));
        }
    }
    out
}

/// Findings of an object about the stores it names.
fn store_findings(
    refs: &[(String, StoreKind, String)],
    ns: Option<&str>,
    stores: &BTreeMap<(StoreKind, String, String), StoreSeen>,
    ctx: &Ctx<'_>,
    f: &mut Vec<Finding>,
) {
    for (field, kind, name) in refs {
        let key = match kind {
            StoreKind::ClusterSecretStore => (*kind, String::new(), name.clone()),
            StoreKind::SecretStore => match ns {
                Some(ns) => (*kind, ns.to_string(), name.clone()),
                // A ClusterExternalSecret's SecretStore is in each namespace it selects.
                None => continue,
            },
        };
        match stores.get(&key) {
            Some(s) if s.verdict == Verdict::Unsupported => f.push(finding(
                Level::Unsupported,
                field.clone(),
                format!("uses {kind} {name:?}, which syncret cannot use (see that store)"),
                Some(&format!("keep it on ESO with that store ({ROUTE})")),
            )),
            Some(s) if !s.class.is_empty() && s.class != ctx.settings.controller_class => f.push(finding(
                Level::Note,
                field.clone(),
                format!(
                    "{kind} {name:?} belongs to controller class {:?}: left to that controller",
                    s.class
                ),
                None,
            )),
            Some(_) => {}
            None => f.push(finding(
                Level::Note,
                field.clone(),
                format!("{kind} {name:?} is not among the checked objects: its provider was not checked"),
                None,
            )),
        }
    }
}

/// Whether `secret` carries ESO's (or syncret's) marks of being written for this ExternalSecret.
fn marked_for(es: &ExternalSecret, secret: &ObjectMeta) -> bool {
    let name = es.metadata.name.clone().unwrap_or_default();
    let ns = es.metadata.namespace.clone().unwrap_or_default();
    let labels = secret.labels.clone().unwrap_or_default();
    labels.get(LABEL_MANAGED).is_some_and(|v| v == "true")
        || labels.get(LABEL_CREATED_BY) == Some(&hash::owner_label(&ns, &name))
        || secret
            .managed_fields
            .iter()
            .flatten()
            .any(|m| m.manager.as_deref() == Some(write::field_manager(&name).as_str()))
        || secret
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.controller == Some(true) && o.kind == "ExternalSecret" && o.name == name)
}

/// An existing target Secret under syncret's ownership rules (stricter than ESO's: no silent takeover).
fn ownership(es: &ExternalSecret, facts: &Facts, f: &mut Vec<Finding>) {
    let Some(secrets) = &facts.secrets else { return };
    let policy = es.spec.target.creation_policy;
    if !matches!(
        policy,
        ExternalSecretCreationPolicy::Owner | ExternalSecretCreationPolicy::Orphan
    ) {
        return;
    }
    let (Some(ns), Some(target)) = (es.metadata.namespace.clone(), es.target_name().map(str::to_string)) else {
        return;
    };
    let Some(meta) = secrets.get(&(ns, target.clone())) else {
        return;
    };
    let adopt = es
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_ADOPT))
        .is_some_and(|v| v == "true");
    let secret = Secret {
        metadata: meta.clone(),
        ..Default::default()
    };
    let refused = match write::check_ownership(es, &secret) {
        Err(WriteError::OwnedByOther { owner, .. }) => {
            f.push(finding(
                Level::Note,
                "spec.target.name",
                format!(
                    "Secret {target:?} is controlled by another ExternalSecret ({owner:?}): ESO and syncret both \
                     refuse to write it"
                ),
                Some("give one of the two ExternalSecrets another target.name"),
            ));
            return;
        }
        Err(_) => true,
        // The same rule for Orphan (syncret never overwrites a Secret nobody manages).
        Ok(()) => !adopt && !marked_for(es, meta),
    };
    if refused {
        f.push(finding(
            Level::Difference,
            "spec.target.name",
            format!(
                "Secret {target:?} exists and no ExternalSecret manages it: ESO takes it over silently, syncret \
                 leaves it untouched (Ready=False) unless the ExternalSecret is annotated {ANNOTATION_ADOPT}=true"
            ),
            Some(&format!(
                "check the Secret's keys may be replaced, then annotate the ExternalSecret {ANNOTATION_ADOPT}=true"
            )),
        ));
    }
}

/// The checks that need other objects: stores used, existing Secrets.
fn across(checked: &mut [Checked], facts: &Facts, ctx: &Ctx<'_>) {
    let mut stores: BTreeMap<(StoreKind, String, String), StoreSeen> = BTreeMap::new();
    for c in checked.iter() {
        if let Parsed::Store { kind, spec } = &c.parsed {
            let ns = match kind {
                StoreKind::SecretStore => c.report.namespace.clone().unwrap_or_default(),
                StoreKind::ClusterSecretStore => String::new(),
            };
            stores.insert(
                (*kind, ns, c.report.name.clone()),
                StoreSeen {
                    verdict: verdict(&c.report.findings),
                    class: spec.controller.clone(),
                },
            );
        }
    }
    for c in checked.iter_mut() {
        let ns = c.report.namespace.clone();
        let f = &mut c.report.findings;
        match &c.parsed {
            Parsed::ExternalSecret(es) => {
                store_findings(&store_refs(&es.spec, "spec"), ns.as_deref(), &stores, ctx, f);
                ownership(es, facts, f);
            }
            Parsed::ClusterExternalSecret(ces) => {
                let refs = store_refs(&ces.spec.external_secret_spec, "spec.externalSecretSpec");
                store_findings(&refs, None, &stores, ctx, f);
            }
            Parsed::PushSecret(ps) => {
                store_findings(&push_refs(&ps.spec, "spec"), ns.as_deref(), &stores, ctx, f);
            }
            Parsed::ClusterPushSecret(cps) => {
                store_findings(
                    &push_refs(&cps.spec.push_secret_spec, "spec.pushSecretSpec"),
                    None,
                    &stores,
                    ctx,
                    f,
                );
            }
            Parsed::Store { .. } | Parsed::Other => {}
        }
    }
}

fn push_refs(spec: &PushSecretSpec, base: &str) -> Vec<(String, StoreKind, String)> {
    spec.secret_store_refs
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.name.is_empty())
        .map(|(i, r)| (format!("{base}.secretStoreRefs[{i}]"), r.kind, r.name.clone()))
        .collect()
}

const HELM_RELEASE: &str = "meta.helm.sh/release-name";
const HELM_RELEASE_NAMESPACE: &str = "meta.helm.sh/release-namespace";
const HELM_RESOURCE_POLICY: &str = "helm.sh/resource-policy";

/// Reports about the cluster itself: ESO's finalizers on Namespaces, the CRDs' owners and stored versions.
pub(super) fn check_facts(facts: &Facts) -> Vec<ObjectReport> {
    let mut out = Vec::new();
    for ns in &facts.namespaces {
        let finalizers = ns.finalizers.clone().unwrap_or_default();
        let (eso, rest): (Vec<String>, Vec<String>) = finalizers
            .into_iter()
            .partition(|f| f.starts_with(FINALIZER_CES_NAMESPACE_PREFIX));
        if eso.is_empty() {
            continue;
        }
        let name = ns.name.clone().unwrap_or_default();
        let remaining =
            serde_json::to_string(&serde_json::json!({"metadata": {"finalizers": rest}})).unwrap_or_default();
        let findings = vec![finding(
            Level::Difference,
            "metadata.finalizers",
            format!(
                "carries ESO's ClusterExternalSecret finalizer(s) {}: syncret puts none on Namespaces and does not \
                 remove ESO's, so once ESO is gone deleting this namespace would wait for them forever",
                eso.join(", ")
            ),
            Some(&format!(
                "once ESO is stopped (it adds them back while it runs): kubectl patch namespace {name} --type=merge \
                 -p '{remaining}'"
            )),
        )];
        out.push(ObjectReport {
            kind: "Namespace".into(),
            api_version: "v1".into(),
            namespace: None,
            name,
            source: "cluster".into(),
            verdict: verdict(&findings),
            findings,
        });
    }
    let known = known_kinds();
    for crd in &facts.crds {
        if crd.spec.group != syncret_crds::GROUP {
            continue;
        }
        let name = crd.metadata.name.clone().unwrap_or_default();
        let mut findings = Vec::new();
        let labels = crd.metadata.labels.clone().unwrap_or_default();
        let annotations = crd.metadata.annotations.clone().unwrap_or_default();
        if let Some(release) = annotations.get(HELM_RELEASE)
            && labels.get("app.kubernetes.io/managed-by").is_some_and(|m| m == "Helm")
        {
            let release_ns = annotations.get(HELM_RELEASE_NAMESPACE).cloned().unwrap_or_default();
            let verify = format!(
                "helm get manifest {release} -n {release_ns} | grep -c '{HELM_RESOURCE_POLICY}: keep' counts the CRDs \
                 the release keeps"
            );
            if annotations.get(HELM_RESOURCE_POLICY).is_some_and(|p| p == "keep") {
                findings.push(finding(
                    Level::Note,
                    "metadata.annotations",
                    format!(
                        "installed by the Helm release {release_ns}/{release} and annotated {HELM_RESOURCE_POLICY}=keep: \
                         Helm keeps it through an uninstall only if the release's own manifest says so (a kubectl \
                         annotate is not enough)"
                    ),
                    Some(&verify),
                ));
            } else {
                findings.push(finding(
                    Level::Difference,
                    "metadata.annotations",
                    format!(
                        "installed by the Helm release {release_ns}/{release}: uninstalling that release deletes this \
                         CRD and every {} in the cluster (and the garbage collector, the Secrets they own)",
                        crd.spec.names.kind
                    ),
                    Some(&format!(
                        "before removing ESO, keep the CRDs through its chart: helm upgrade {release} \
                         external-secrets/external-secrets -n {release_ns} --reuse-values --set-string \
                         'crds.annotations.helm\\.sh/resource-policy=keep' (docs/migration.md); {verify}"
                    )),
                ));
            }
        }
        if let Some(k) = known.iter().find(|k| k.kind == crd.spec.names.kind) {
            for stored in crd
                .status
                .as_ref()
                .and_then(|s| s.stored_versions.clone())
                .unwrap_or_default()
            {
                if !k.served.contains(&stored) {
                    findings.push(finding(
                        Level::Unsupported,
                        "status.storedVersions",
                        format!(
                            "objects may still be stored as {stored}, which syncret's CRD does not have: the API \
                             server refuses to replace this CRD while status.storedVersions lists it"
                        ),
                        Some(&format!(
                            "rewrite the objects in the storage version (kubectl get {plural}.{g} -A -o json | \
                             kubectl replace -f -), then drop {stored} from status.storedVersions (kubectl patch crd \
                             {name} --subresource=status --type=merge -p '{{\"status\":{{\"storedVersions\":[\"{v}\"]}}}}')",
                            plural = k.plural,
                            g = syncret_crds::GROUP,
                            v = k.served.first().map(String::as_str).unwrap_or("v1"),
                        )),
                    ));
                }
            }
        }
        if findings.is_empty() {
            continue;
        }
        out.push(ObjectReport {
            kind: "CustomResourceDefinition".into(),
            api_version: "apiextensions.k8s.io/v1".into(),
            namespace: None,
            name,
            source: "cluster".into(),
            verdict: verdict(&findings),
            findings,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_keeps_the_first_of_a_field_and_level() {
        let f = |level, field: &str| finding(level, field, field, None);
        let out = dedupe(vec![
            f(Level::Unsupported, "spec.dataFrom[1].sourceRef.generatorRef"),
            f(Level::Unsupported, "spec.dataFrom[1]"),
            f(Level::Note, "spec.dataFrom[1]"),
            f(Level::Unsupported, "spec.dataFrom[10]"),
            f(Level::Unsupported, "spec.provider"),
            f(Level::Unsupported, "spec.provider.onepassword"),
        ]);
        let fields: Vec<(&str, Level)> = out.iter().map(|f| (f.field.as_str(), f.level)).collect();
        assert_eq!(
            fields,
            [
                ("spec.dataFrom[1].sourceRef.generatorRef", Level::Unsupported),
                ("spec.dataFrom[1]", Level::Note),
                ("spec.dataFrom[10]", Level::Unsupported),
                ("spec.provider", Level::Unsupported),
            ]
        );
    }
}
