//! The ESO manifests under `tests/fixtures/eso/`: valid ones deserialize, pass the CRD schema and `validate()`,
//! and serialize back without losing anything; invalid ones are rejected naming the field, by `validate()`
//! (`# expect: <text>`) or by the schema (`# expect-apiserver: <text>`).
//!
//! The schema check here is an offline approximation of the apiserver's (types, enums, patterns, lengths,
//! required, unknown fields as with strict field validation, min/max properties and items, `format: byte`);
//! CEL rules are left to the real apiserver, which `tests/tests/integration/crds.rs` exercises.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde_json::Value;
use syncret_crds::{
    ClusterExternalSecret, ClusterPushSecret, ClusterSecretStore, ExternalSecret, FieldError, PushSecret, SecretStore,
    generate,
};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/eso")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn load(path: &Path) -> (String, Value) {
    let text = std::fs::read_to_string(path).unwrap();
    let value: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (text, value)
}

/// What typed handling of one manifest produced.
struct Typed {
    reserialized: Value,
    errors: Vec<FieldError>,
}

fn typed<T>(value: &Value, validate: impl Fn(&T) -> Vec<FieldError>) -> Result<Typed, String>
where
    T: DeserializeOwned + serde::Serialize,
{
    let obj: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let reserialized = serde_json::to_value(&obj).unwrap();
    // Serializing and reading back is stable.
    let again: T = serde_json::from_value(reserialized.clone()).unwrap();
    assert_eq!(serde_json::to_value(&again).unwrap(), reserialized);
    Ok(Typed {
        errors: validate(&obj),
        reserialized,
    })
}

fn handle(value: &Value) -> Result<Typed, String> {
    let api_version = value["apiVersion"].as_str().unwrap_or_default();
    match (api_version, value["kind"].as_str().unwrap_or_default()) {
        ("external-secrets.io/v1", "ExternalSecret") => typed(value, |o: &ExternalSecret| o.spec.validate()),
        ("external-secrets.io/v1", "SecretStore") => typed(value, |o: &SecretStore| o.spec.validate()),
        ("external-secrets.io/v1", "ClusterSecretStore") => typed(value, |o: &ClusterSecretStore| o.spec.validate()),
        ("external-secrets.io/v1", "ClusterExternalSecret") => {
            typed(value, |o: &ClusterExternalSecret| o.spec.validate())
        }
        ("external-secrets.io/v1alpha1", "PushSecret") => typed(value, |o: &PushSecret| o.spec.validate()),
        ("external-secrets.io/v1alpha1", "ClusterPushSecret") => {
            typed(value, |o: &ClusterPushSecret| o.spec.validate())
        }
        other => panic!("fixture of unexpected kind {other:?}"),
    }
}

fn crd_schemas() -> BTreeMap<String, Value> {
    generate::crds()
        .into_iter()
        .map(|crd| {
            let version = &crd.spec.versions[0];
            let key = format!("{}/{}/{}", crd.spec.group, version.name, crd.spec.names.kind);
            let schema = serde_json::to_value(version.schema.as_ref().unwrap().open_api_v3_schema.as_ref()).unwrap();
            (key, schema)
        })
        .collect()
}

/// Whether the schema's property `name` has a default (the apiserver sets it when the field is missing).
fn props_default(schema: &Value, name: &str) -> bool {
    schema
        .get("properties")
        .and_then(|p| p.get(name))
        .is_some_and(|p| p.get("default").is_some())
}

/// Offline schema check of `spec` (see the module docs); returns `path: message` lines.
fn schema_errors(schemas: &BTreeMap<String, Value>, value: &Value) -> Vec<String> {
    let key = format!(
        "{}/{}",
        value["apiVersion"].as_str().unwrap(),
        value["kind"].as_str().unwrap()
    );
    let schema = &schemas[&key];
    let mut errs = Vec::new();
    match value.get("spec") {
        Some(spec) => check(&schema["properties"]["spec"], spec, "spec", &mut errs),
        None => errs.push("spec: Required value".to_owned()),
    }
    errs
}

fn check(schema: &Value, value: &Value, path: &str, errs: &mut Vec<String>) {
    if value.is_null() {
        return; // the apiserver prunes nulls of non-nullable fields
    }
    if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            errs.push(format!("{path}: must be an integer or a string"));
        }
        return;
    }
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
        && schema.get("properties").is_none()
    {
        return;
    }
    let ty = schema["type"].as_str().unwrap_or_default();
    let type_ok = match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => true,
    };
    if !type_ok {
        errs.push(format!("{path}: Invalid value: must be of type {ty}"));
        return;
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array)
        && !values.contains(value)
    {
        errs.push(format!("{path}: Unsupported value: {value}"));
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as u64;
        if schema.get("minLength").and_then(Value::as_u64).is_some_and(|m| len < m) {
            errs.push(format!(
                "{path}: Invalid value: should be at least {} chars long",
                schema["minLength"]
            ));
        }
        if schema.get("maxLength").and_then(Value::as_u64).is_some_and(|m| len > m) {
            errs.push(format!("{path}: Too long"));
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
            && !regex::Regex::new(pattern).unwrap().is_match(s)
        {
            errs.push(format!("{path}: Invalid value: should match '{pattern}'"));
        }
        if schema.get("format").and_then(Value::as_str) == Some("byte")
            && base64::engine::general_purpose::STANDARD
                .decode(s.replace(['\n', '\r'], ""))
                .is_err()
        {
            errs.push(format!("{path}: Invalid value: must be base64"));
        }
    }
    if let Some(obj) = value.as_object() {
        let n = obj.len() as u64;
        if schema
            .get("minProperties")
            .and_then(Value::as_u64)
            .is_some_and(|m| n < m)
        {
            errs.push(format!(
                "{path}: Required value: should have at least {} properties",
                schema["minProperties"]
            ));
        }
        if schema
            .get("maxProperties")
            .and_then(Value::as_u64)
            .is_some_and(|m| n > m)
        {
            errs.push(format!(
                "{path}: Too many: {n}: must have at most {} items",
                schema["maxProperties"]
            ));
        }
        for req in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let req = req.as_str().unwrap();
            // The apiserver fills a missing field's default before it validates (ESO marks some required
            // fields with a default, e.g. Vault auth `path`).
            let defaulted = props_default(schema, req);
            if obj.get(req).is_none_or(Value::is_null) && !defaulted {
                errs.push(format!("{path}.{req}: Required value"));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, v) in obj {
            if let Some(sub) = props.and_then(|p| p.get(k)) {
                check(sub, v, &format!("{path}.{k}"), errs);
            } else if let Some(sub) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                check(sub, v, &format!("{path}[{k}]"), errs);
            } else if schema.get("x-kubernetes-preserve-unknown-fields") != Some(&Value::Bool(true)) {
                errs.push(format!(".{path}.{k}: field not declared in schema"));
            }
        }
    }
    if let Some(items) = value.as_array() {
        let n = items.len() as u64;
        if schema.get("minItems").and_then(Value::as_u64).is_some_and(|m| n < m) {
            errs.push(format!(
                "{path}: Invalid value: should have at least {} items",
                schema["minItems"]
            ));
        }
        if schema.get("maxItems").and_then(Value::as_u64).is_some_and(|m| n > m) {
            errs.push(format!("{path}: Too many items"));
        }
        for (i, item) in items.iter().enumerate() {
            check(&schema["items"], item, &format!("{path}[{i}]"), errs);
        }
    }
}

/// Values Go's `omitempty` drops (and objects holding only such values); the types drop them too.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_empty),
    }
}

/// Every non-empty value of `expected` is in `actual` at the same place.
fn missing(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                match a.get(k) {
                    Some(av) => missing(v, av, &format!("{path}.{k}"), out),
                    None if is_empty(v) => {}
                    None => out.push(format!("{path}.{k} was dropped")),
                }
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                missing(ev, av, &format!("{path}[{i}]"), out);
            }
        }
        (e, a) if e == a => {}
        (e, _) if is_empty(e) && is_empty(actual) => {}
        (e, a) => out.push(format!("{path}: {e} became {a}")),
    }
}

fn expectation(text: &str) -> (&str, &str) {
    let first = text.lines().next().unwrap_or_default();
    if let Some(rest) = first.strip_prefix("# expect-apiserver:") {
        ("apiserver", rest.trim())
    } else if let Some(rest) = first.strip_prefix("# expect:") {
        ("validate", rest.trim())
    } else {
        panic!("invalid fixture must start with `# expect: …` or `# expect-apiserver: …`, found {first:?}")
    }
}

#[test]
fn valid_fixtures_deserialize_validate_and_round_trip() {
    let schemas = crd_schemas();
    let files = yaml_files(&fixture_dir());
    assert!(files.len() >= 30, "only {} fixtures", files.len());
    let mut kinds = BTreeMap::<String, usize>::new();
    let mut problems = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (_, value) = load(path);
        *kinds.entry(value["kind"].as_str().unwrap().to_owned()).or_default() += 1;
        for e in schema_errors(&schemas, &value) {
            problems.push(format!("{name}: schema: {e}"));
        }
        match handle(&value) {
            Err(e) => problems.push(format!("{name}: does not deserialize: {e}")),
            Ok(t) => {
                problems.extend(t.errors.iter().map(|e| format!("{name}: validate: {e}")));
                let mut lost = Vec::new();
                missing(&value, &t.reserialized, "", &mut lost);
                problems.extend(lost.into_iter().map(|l| format!("{name}: round trip: {l}")));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    for kind in ["ExternalSecret", "SecretStore", "ClusterSecretStore"] {
        assert!(
            kinds.get(kind).copied().unwrap_or(0) >= 5,
            "few {kind} fixtures: {kinds:?}"
        );
    }
}

#[test]
fn valid_fixtures_cover_every_provider_and_form() {
    let all: String = yaml_files(&fixture_dir())
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let needles = [
        // providers and their auth blocks
        "aws:",
        "accessKeyIDSecretRef:",
        "sessionTokenSecretRef:",
        "jwt:",
        "ParameterStore",
        "CertificateManager",
        "additionalRoles:",
        "sessionTagsPolicy: Custom",
        "vault:",
        "tokenSecretRef:",
        "appRole:",
        "roleRef:",
        "kubernetes:",
        "ldap:",
        "userPass:",
        "kubernetesServiceAccountToken:",
        "cert:",
        "iam:",
        "gcp:",
        "tls:",
        "checkAndSet:",
        "openBao:",
        "azurekv:",
        "authType: ManagedIdentity",
        "authType: WorkloadIdentity",
        "clientCertificate:",
        "customCloudConfig:",
        "gcpsm:",
        "secretAccessKeySecretRef:",
        "workloadIdentity:",
        "workloadIdentityFederation:",
        "credConfig:",
        "awsSecurityCredentials:",
        "serviceAccount:",
        "bearerToken:",
        "clientKey:",
        "authRef:",
        "fake:",
        "webhook:",
        "ntlm:",
        // dataFrom forms, rewrites, templates, policies, ClusterSecretStore conditions
        "extract:",
        "find:",
        "tags:",
        "generatorRef:",
        "storeRef:",
        "regexp:",
        "transform:",
        "merge:",
        "templateFrom:",
        "literal:",
        "KeysAndValues",
        "mergePolicy: Merge",
        "target: Annotations",
        "target: Labels",
        "creationPolicy: Owner",
        "creationPolicy: Orphan",
        "creationPolicy: Merge",
        "creationPolicy: None",
        "creationPolicy: CreateOrMerge",
        "deletionPolicy: Delete",
        "deletionPolicy: Merge",
        "deletionPolicy: Retain",
        "refreshPolicy: CreatedOnce",
        "refreshPolicy: Periodic",
        "refreshPolicy: OnChange",
        "syncWindows:",
        "namespaceSelector:",
        "namespaces:",
        "namespaceRegexes:",
        "metadataPolicy: Fetch",
        "manifest:",
    ];
    let absent: Vec<&str> = needles.iter().copied().filter(|n| !all.contains(n)).collect();
    assert!(absent.is_empty(), "no valid fixture uses {absent:?}");
}

#[test]
fn invalid_fixtures_are_rejected_naming_the_field() {
    let schemas = crd_schemas();
    let files = yaml_files(&fixture_dir().join("invalid"));
    assert!(files.len() >= 20, "only {} invalid fixtures", files.len());
    let mut problems = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (text, value) = load(path);
        let (by, expected) = expectation(&text);
        let schema = schema_errors(&schemas, &value);
        let typed = handle(&value);
        let validate: Vec<String> = typed
            .as_ref()
            .map(|t| t.errors.iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        match by {
            "validate" => {
                // The apiserver accepts it (schema clean, deserializes); only validate() catches it.
                if !schema.is_empty() {
                    problems.push(format!(
                        "{name}: expected only validate() to reject it, but the schema does: {schema:?}"
                    ));
                }
                if let Err(e) = &typed {
                    problems.push(format!("{name}: does not deserialize: {e}"));
                }
                if !validate.iter().any(|e| e.contains(expected)) {
                    problems.push(format!(
                        "{name}: no validate() error contains {expected:?}: {validate:?}"
                    ));
                }
            }
            _ => {
                let serde = typed.as_ref().err().cloned().into_iter().collect::<Vec<_>>();
                let all: Vec<&String> = schema.iter().chain(&validate).chain(&serde).collect();
                if !all.iter().any(|e| e.contains(expected)) {
                    problems.push(format!("{name}: nothing rejects it naming {expected:?}: {all:?}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn schema_check_catches_typos() {
    // Sanity check of the offline checker itself.
    let schemas = crd_schemas();
    let es: Value = serde_json::json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "spec": {"data": [{"secretKey": "a", "remoteRef": {"key": "a", "versoin": "1"}}]}
    });
    assert_eq!(
        schema_errors(&schemas, &es),
        [".spec.data[0].remoteRef.versoin: field not declared in schema"]
    );
}
