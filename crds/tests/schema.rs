//! Properties of the generated OpenAPI schemas that ESO users rely on (defaults, enums, structure).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns
use serde_json::{Value, json};
use syncret_crds::generate;

fn schema(crd_name: &str) -> Value {
    let crd = generate::crds()
        .into_iter()
        .find(|c| c.metadata.name.as_deref() == Some(crd_name))
        .unwrap_or_else(|| panic!("no CRD {crd_name}"));
    let version = &crd.spec.versions[0];
    serde_json::to_value(version.schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap()).unwrap()
}

/// Walks `a.b[].c{}` style paths: `.x` is a property, `[]` the array items, `{}` additionalProperties.
fn at<'a>(schema: &'a Value, path: &str) -> &'a Value {
    let mut node = schema;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, suffix) = part.find(['[', '{']).map_or((part, ""), |i| part.split_at(i));
        node = node
            .pointer(&format!("/properties/{name}"))
            .unwrap_or_else(|| panic!("no {name} in {path}"));
        for s in suffix.as_bytes().chunks(2) {
            node = match s {
                b"[]" => &node["items"],
                b"{}" => &node["additionalProperties"],
                _ => panic!("bad path {path}"),
            };
        }
    }
    node
}

fn count_key(v: &Value, key: &str) -> usize {
    match v {
        Value::Object(m) => m.iter().map(|(k, c)| usize::from(k == key) + count_key(c, key)).sum(),
        Value::Array(a) => a.iter().map(|c| count_key(c, key)).sum(),
        _ => 0,
    }
}

#[test]
fn external_secret_defaults_and_enums() {
    let s = schema("externalsecrets.external-secrets.io");
    assert_eq!(
        at(&s, "spec.target")["default"],
        json!({"creationPolicy": "Owner", "deletionPolicy": "Retain"})
    );
    assert_eq!(at(&s, "spec.refreshInterval")["default"], "1h0m0s");
    assert_eq!(
        at(&s, "spec.target.creationPolicy")["enum"],
        json!(["Owner", "Orphan", "Merge", "None", "CreateOrMerge"])
    );
    assert_eq!(
        at(&s, "spec.target.deletionPolicy")["enum"],
        json!(["Delete", "Merge", "Retain"])
    );
    assert_eq!(
        at(&s, "spec.refreshPolicy")["enum"],
        json!(["CreatedOnce", "Periodic", "OnChange"])
    );
    assert_eq!(
        at(&s, "spec.secretStoreRef.kind")["enum"],
        json!(["SecretStore", "ClusterSecretStore"])
    );
    assert_eq!(at(&s, "spec.target.template.engineVersion")["default"], "v2");
    assert_eq!(at(&s, "spec.target.template.mergePolicy")["default"], "Replace");
    assert_eq!(at(&s, "spec.target.template.templateFrom[].target")["default"], "Data");
    assert_eq!(
        at(&s, "spec.target.template.templateFrom[].configMap.items[].templateAs")["default"],
        "Values"
    );
    assert_eq!(
        at(&s, "spec.data[].remoteRef.decodingStrategy")["enum"],
        json!(["Auto", "Base64", "Base64URL", "None"])
    );
    assert_eq!(at(&s, "spec.data[].secretKey")["pattern"], "^[-._a-zA-Z0-9]+$");
    assert_eq!(at(&s, "spec.dataFrom[].rewrite[]")["maxProperties"], 1);
    assert_eq!(
        at(&s, "spec.dataFrom[].rewrite[].merge.strategy")["enum"],
        json!(["Extract", "JSON"])
    );
    assert_eq!(
        at(&s, "spec.dataFrom[].sourceRef.generatorRef.apiVersion")["default"],
        "generators.external-secrets.io/v1alpha1"
    );
    assert_eq!(at(&s, "spec.syncWindows.kind")["enum"], json!(["allow", "deny"]));
    assert_eq!(at(&s, "status.refreshTime")["nullable"], true);
}

#[test]
fn template_has_a_real_schema() {
    let s = schema("externalsecrets.external-secrets.io");
    let template = at(&s, "spec.target.template");
    for field in [
        "type",
        "engineVersion",
        "metadata",
        "mergePolicy",
        "data",
        "templateFrom",
    ] {
        assert!(template["properties"].get(field).is_some(), "template.{field}");
    }
    assert_eq!(at(&s, "spec.target.template.data{}")["type"], "string");
    assert_eq!(
        count_key(&s, "x-kubernetes-preserve-unknown-fields"),
        0,
        "ESO has no free-form fields in ExternalSecret"
    );
}

#[test]
fn nullable_only_where_eso_has_it() {
    for name in [
        "externalsecrets",
        "clusterexternalsecrets",
        "secretstores",
        "clustersecretstores",
    ] {
        let s = schema(&format!("{name}.external-secrets.io"));
        let expected = usize::from(name == "externalsecrets");
        assert_eq!(count_key(&s, "nullable"), expected, "{name}");
    }
    assert_eq!(
        count_key(
            &schema("pushsecrets.external-secrets.io"),
            "x-kubernetes-preserve-unknown-fields"
        ),
        3
    );
}

#[test]
fn store_provider_is_exactly_one_known_key() {
    for name in [
        "secretstores.external-secrets.io",
        "clustersecretstores.external-secrets.io",
    ] {
        let s = schema(name);
        let provider = at(&s, "spec.provider");
        assert_eq!(provider["minProperties"], 1);
        assert_eq!(provider["maxProperties"], 1);
        assert!(provider.get("additionalProperties").is_none());
        assert!(provider.get("x-kubernetes-preserve-unknown-fields").is_none());
        let mut keys: Vec<&String> = provider["properties"].as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "aws",
                "azurekv",
                "bitwardensecretsmanager",
                "doppler",
                "fake",
                "gcpsm",
                "gitlab",
                "infisical",
                "kubernetes",
                "onepassword",
                "openBao",
                "sops",
                "vault",
                "webhook"
            ]
        );
        assert_eq!(
            at(&s, "spec.refreshInterval"),
            &json!({"x-kubernetes-int-or-string": true, "description": at(&s, "spec.refreshInterval")["description"]})
        );
        assert_eq!(at(&s, "spec.provider.vault.version")["default"], "v2");
        assert_eq!(
            at(&s, "spec.provider.vault.auth.kubernetes.mountPath")["default"],
            "kubernetes"
        );
        assert_eq!(at(&s, "spec.provider.vault.auth.appRole.path")["default"], "approle");
        assert_eq!(at(&s, "spec.provider.kubernetes.remoteNamespace")["default"], "default");
        assert_eq!(
            at(&s, "spec.provider.kubernetes.server.url")["default"],
            "kubernetes.default"
        );
        assert_eq!(at(&s, "spec.provider.azurekv.authType")["default"], "ServicePrincipal");
        assert_eq!(
            at(&s, "spec.provider.gcpsm.secretVersionSelectionPolicy")["default"],
            "LatestOrFail"
        );
        assert_eq!(at(&s, "spec.provider.aws.sessionTagsPolicy")["default"], "None");
        assert_eq!(at(&s, "spec.provider.vault.caBundle")["format"], "byte");
        assert_eq!(
            at(&s, "spec.conditions[].namespaceSelector")["x-kubernetes-map-type"],
            "atomic"
        );
        assert_eq!(
            count_key(&s, "x-kubernetes-validations"),
            5,
            "aws customSessionTags + three openBao rules + doppler auth"
        );
        saas_providers_match_eso(&s);
    }
    // Both store kinds share one spec schema (only the description differs).
    let (ss, css) = (
        schema("secretstores.external-secrets.io"),
        schema("clustersecretstores.external-secrets.io"),
    );
    for key in ["properties", "required", "type"] {
        assert!(
            at(&ss, "spec")[key] == at(&css, "spec")[key],
            "spec.{key} differs between the store kinds"
        );
    }
}

/// The SaaS providers' schemas as ESO v2.9 generates them (required fields, defaults, enums, formats, CEL).
fn saas_providers_match_eso(s: &Value) {
    // As a set: controller-gen sorts `required`, schemars keeps field order; the apiserver does not care.
    let required = |path: &str| {
        let mut r: Vec<String> = serde_json::from_value(at(s, path)["required"].clone()).unwrap_or_default();
        r.sort();
        json!(r)
    };
    assert_eq!(
        required("spec.provider.onepassword"),
        json!(["auth", "connectHost", "vaults"])
    );
    let vaults = at(s, "spec.provider.onepassword.vaults");
    assert_eq!(
        vaults["additionalProperties"],
        json!({"type": "integer"}),
        "Go's int: no format"
    );
    assert_eq!(vaults["type"], "object");
    assert_eq!(
        required("spec.provider.onepassword.auth.secretRef"),
        json!(["connectTokenSecretRef"])
    );
    assert_eq!(required("spec.provider.doppler"), json!(["auth"]));
    assert_eq!(
        at(s, "spec.provider.doppler.auth")["x-kubernetes-validations"][0]["rule"],
        "(has(self.secretRef) && !has(self.oidcConfig)) || (!has(self.secretRef) && has(self.oidcConfig))"
    );
    assert_eq!(
        at(s, "spec.provider.doppler.format")["enum"],
        json!(["json", "dotnet-json", "env", "yaml", "docker"])
    );
    assert_eq!(
        at(s, "spec.provider.doppler.nameTransformer")["enum"],
        json!([
            "upper-camel",
            "camel",
            "lower-snake",
            "tf-var",
            "dotnet-env",
            "lower-kebab"
        ])
    );
    let exp = at(s, "spec.provider.doppler.auth.oidcConfig.expirationSeconds");
    assert_eq!(
        (exp["default"].clone(), exp["format"].clone()),
        (json!(600), json!("int64"))
    );
    assert_eq!(
        required("spec.provider.doppler.auth.oidcConfig"),
        json!(["identity", "serviceAccountRef"])
    );
    assert_eq!(required("spec.provider.infisical"), json!(["auth", "secretsScope"]));
    assert_eq!(
        at(s, "spec.provider.infisical.hostAPI")["default"],
        "https://app.infisical.com/api"
    );
    let scope = "spec.provider.infisical.secretsScope";
    assert_eq!(required(scope), json!(["environmentSlug", "projectSlug"]));
    assert_eq!(at(s, &format!("{scope}.secretsPath"))["default"], "/");
    assert_eq!(at(s, &format!("{scope}.recursive"))["default"], false);
    assert_eq!(at(s, &format!("{scope}.expandSecretReferences"))["default"], true);
    assert_eq!(at(s, "spec.provider.infisical.caBundle")["format"], "byte");
    assert_eq!(
        required("spec.provider.infisical.auth.ociAuthCredentials"),
        json!([
            "fingerprint",
            "identityId",
            "privateKey",
            "region",
            "tenancyId",
            "userId"
        ])
    );
    assert_eq!(
        required("spec.provider.bitwardensecretsmanager"),
        json!(["auth", "organizationID", "projectID"])
    );
    assert_eq!(
        at(s, "spec.provider.bitwardensecretsmanager.caBundle"),
        &json!({"type": "string", "description": at(s, "spec.provider.bitwardensecretsmanager.caBundle")["description"]})
    );
    assert_eq!(required("spec.provider.gitlab"), json!(["auth"]));
    assert_eq!(required("spec.provider.gitlab.auth"), json!(["SecretRef"]));
    assert!(at(s, "spec.provider.gitlab.auth.SecretRef").get("required").is_none());
    assert_eq!(at(s, "spec.provider.gitlab.caBundle")["format"], "byte");
    assert_eq!(at(s, "spec.provider.gitlab.groupIDs")["items"]["type"], "string");
}

#[test]
fn names_columns_and_scope() {
    let by_name = |n: &str| generate::crds().into_iter().find(|c| c.spec.names.kind == n).unwrap();
    let cases = [
        ("ExternalSecret", Some("es"), "Namespaced"),
        ("ClusterExternalSecret", Some("ces"), "Cluster"),
        ("SecretStore", Some("ss"), "Namespaced"),
        ("ClusterSecretStore", Some("css"), "Cluster"),
        ("PushSecret", Some("ps"), "Namespaced"),
        ("ClusterPushSecret", None, "Cluster"),
    ];
    for (kind, short, scope) in cases {
        let crd = by_name(kind);
        assert_eq!(
            crd.spec
                .names
                .short_names
                .as_ref()
                .and_then(|s| s.first())
                .map(String::as_str),
            short,
            "{kind}"
        );
        assert_eq!(crd.spec.scope, scope, "{kind}");
        assert_eq!(
            crd.spec.names.categories,
            Some(vec!["external-secrets".to_owned()]),
            "{kind}"
        );
        assert_eq!(
            crd.spec.names.list_kind.as_deref(),
            Some(format!("{kind}List").as_str())
        );
        assert_eq!(
            crd.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("external-secrets.io/component"))
                .map(String::as_str),
            Some("controller")
        );
        let version = &crd.spec.versions[0];
        assert!(version.served && version.storage);
        assert!(
            version.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some(),
            "{kind} status subresource"
        );
    }
    let es = by_name("ExternalSecret");
    let columns: Vec<&str> = es.spec.versions[0]
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        columns,
        ["StoreType", "Store", "Refresh Interval", "Status", "Ready", "Last Sync"]
    );
    let selectable: Vec<&str> = es.spec.versions[0]
        .selectable_fields
        .as_ref()
        .unwrap()
        .iter()
        .map(|f| f.json_path.as_str())
        .collect();
    assert_eq!(
        selectable,
        [
            ".spec.secretStoreRef.name",
            ".spec.secretStoreRef.kind",
            ".spec.target.name",
            ".spec.refreshInterval"
        ]
    );
    assert_eq!(by_name("PushSecret").spec.versions[0].name, "v1alpha1");
}

fn enums<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                if k == "enum" {
                    out.push(c);
                } else if k != "default" {
                    enums(c, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|c| enums(c, out)),
        _ => {}
    }
}

#[test]
fn enums_never_list_null() {
    for crd in generate::crds() {
        let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
        let mut found = Vec::new();
        enums(&schema, &mut found);
        // Every external-secrets.io CRD has enums (the walk works); some generators (UUID, Fake) have none.
        assert!(
            !found.is_empty() || crd.spec.group == "generators.external-secrets.io",
            "{}",
            crd.spec.names.kind
        );
        for values in found {
            assert!(
                values.as_array().unwrap().iter().all(Value::is_string),
                "{}: {values}",
                crd.spec.names.kind
            );
        }
    }
}

/// The generators' CRDs as ESO v2.9 has them: scope, categories, subresources, defaults and enums users rely on.
#[test]
fn generators_match_eso() {
    let by_name = |n: &str| generate::crds().into_iter().find(|c| c.spec.names.kind == n).unwrap();
    let kinds = [
        ("Password", "Namespaced"),
        ("UUID", "Namespaced"),
        ("SSHKey", "Namespaced"),
        ("Fake", "Namespaced"),
        ("ECRAuthorizationToken", "Namespaced"),
        ("STSSessionToken", "Namespaced"),
        ("VaultDynamicSecret", "Namespaced"),
        ("Webhook", "Namespaced"),
        ("ClusterGenerator", "Cluster"),
        ("GeneratorState", "Namespaced"),
    ];
    for (kind, scope) in kinds {
        let crd = by_name(kind);
        assert_eq!(crd.spec.group, "generators.external-secrets.io", "{kind}");
        assert_eq!(crd.spec.scope, scope, "{kind}");
        assert_eq!(crd.spec.versions[0].name, "v1alpha1", "{kind}");
        let categories = crd.spec.names.categories.clone().unwrap_or_default();
        assert!(
            categories.iter().any(|c| c == "external-secrets-generators"),
            "{kind}: {categories:?}"
        );
        let status = crd.spec.versions[0]
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some();
        assert_eq!(status, kind != "GeneratorState", "{kind} status subresource");
    }
    let p = schema("passwords.generators.external-secrets.io");
    assert_eq!(at(&p, "spec.length")["default"], 24);
    assert_eq!(at(&p, "spec.allowRepeat")["default"], false);
    assert_eq!(at(&p, "spec.noUpper")["default"], false);
    assert_eq!(at(&p, "spec.encoding")["default"], "raw");
    assert_eq!(
        at(&p, "spec.encoding")["enum"],
        json!(["base64", "base64url", "base32", "hex", "raw"])
    );
    let s = schema("sshkeys.generators.external-secrets.io");
    assert_eq!(at(&s, "spec.keyType")["default"], "rsa");
    let v = schema("vaultdynamicsecrets.generators.external-secrets.io");
    assert_eq!(at(&v, "spec.resultType")["default"], "Data");
    assert_eq!(at(&v, "spec.resultType")["enum"], json!(["Data", "Auth", "Raw"]));
    assert!(at(&v, "spec.provider.auth").get("properties").is_some());
    let c = schema("clustergenerators.generators.external-secrets.io");
    let kinds = at(&c, "spec.kind")["enum"].as_array().unwrap().len();
    assert_eq!(kinds, 17, "ESO's 17 generator kinds");
    assert_eq!(at(&c, "spec")["required"], json!(["generator", "kind"]));
    let g = schema("generatorstates.generators.external-secrets.io");
    assert_eq!(at(&g, "spec.garbageCollectionDeadline")["format"], "date-time");
    assert!(
        at(&g, "spec.resource")
            .get("x-kubernetes-preserve-unknown-fields")
            .is_some()
    );
}
