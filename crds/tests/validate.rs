//! Table-driven tests of `validate()`: every problem is reported, each with its field path.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use std::time::Duration;

use syncret_crds::{
    ClusterExternalSecret, ClusterPushSecret, ClusterSecretStore, ExternalSecret, FieldError, PushSecret, SecretStore,
};

/// Parses a manifest (kind from the YAML) and returns `validate()`'s errors as `path: message` strings.
fn errors(yaml: &str) -> Vec<String> {
    let value: serde_json::Value = serde_yaml::from_str(yaml).unwrap();
    let errs: Vec<FieldError> = match value["kind"].as_str().unwrap() {
        "ExternalSecret" => serde_json::from_value::<ExternalSecret>(value).unwrap().spec.validate(),
        "SecretStore" => serde_json::from_value::<SecretStore>(value).unwrap().spec.validate(),
        "ClusterSecretStore" => serde_json::from_value::<ClusterSecretStore>(value)
            .unwrap()
            .spec
            .validate(),
        "ClusterExternalSecret" => serde_json::from_value::<ClusterExternalSecret>(value)
            .unwrap()
            .spec
            .validate(),
        "PushSecret" => serde_json::from_value::<PushSecret>(value).unwrap().spec.validate(),
        "ClusterPushSecret" => serde_json::from_value::<ClusterPushSecret>(value)
            .unwrap()
            .spec
            .validate(),
        other => panic!("{other}"),
    };
    errs.iter().map(ToString::to_string).collect()
}

fn paths(errors: &[String]) -> Vec<&str> {
    errors
        .iter()
        .map(|e| e.split_once(": ").map_or(e.as_str(), |(p, _)| p))
        .collect()
}

fn es(spec: &str) -> String {
    format!(
        "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: x}}\nspec:\n{}",
        indent(spec)
    )
}

fn store(kind: &str, spec: &str) -> String {
    format!(
        "apiVersion: external-secrets.io/v1\nkind: {kind}\nmetadata: {{name: x}}\nspec:\n{}",
        indent(spec)
    )
}

fn push(spec: &str) -> String {
    format!(
        "apiVersion: external-secrets.io/v1alpha1\nkind: PushSecret\nmetadata: {{name: x}}\nspec:\n{}",
        indent(spec)
    )
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("  {l}\n")).collect()
}

/// (case name, manifest, expected error paths in order)
fn check(cases: &[(&str, String, &[&str])]) {
    let mut failures = Vec::new();
    for (name, yaml, want) in cases {
        let got = errors(yaml);
        if paths(&got) != *want {
            failures.push(format!("{name}:\n  want {want:?}\n  got  {got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const ONE_ITEM: &str = "data:\n- secretKey: a\n  remoteRef:\n    key: a";

#[test]
fn external_secret() {
    check(&[
        ("minimal is valid", es(ONE_ITEM), &[]),
        (
            "every top-level problem at once",
            es("refreshInterval: 1d\ntarget:\n  creationPolicy: None\n  deletionPolicy: Merge"),
            &["spec.target.deletionPolicy", "spec.refreshInterval", "spec"],
        ),
        (
            "Delete needs ownership: Merge, None and CreateOrMerge are rejected",
            es(&format!(
                "target: {{creationPolicy: CreateOrMerge, deletionPolicy: Delete}}\n{ONE_ITEM}"
            )),
            &["spec.target.deletionPolicy"],
        ),
        (
            "Orphan with Delete is allowed, as in ESO",
            es(&format!(
                "target: {{creationPolicy: Orphan, deletionPolicy: Delete}}\n{ONE_ITEM}"
            )),
            &[],
        ),
        (
            "data items: duplicates (each one), empty key, bad secretKey, empty sourceRef",
            es(
                "data:\n- {secretKey: a, remoteRef: {key: x}}\n- {secretKey: a, remoteRef: {key: ''}}\n- {secretKey: a, remoteRef: {key: y}}\n- {secretKey: 'b c', remoteRef: {key: z}, sourceRef: {}}",
            ),
            &[
                "spec.data[1].secretKey",
                "spec.data[1].remoteRef.key",
                "spec.data[2].secretKey",
                "spec.data[3].secretKey",
                "spec.data[3].sourceRef",
            ],
        ),
        (
            "duplicate secretKeys are only rejected with deletionPolicy Retain, as in ESO",
            es(
                "target: {deletionPolicy: Delete}\ndata:\n- {secretKey: a, remoteRef: {key: x}}\n- {secretKey: a, remoteRef: {key: y}}",
            ),
            &[],
        ),
        (
            "dataFrom entries are checked independently",
            es(concat!(
                "dataFrom:\n",
                "- rewrite: [{transform: {template: x}}]\n",
                "- {extract: {key: a}, find: {path: b}}\n",
                "- find: {name: {regexp: '(a'}}\n",
                "  rewrite:\n",
                "  - regexp: {source: '[', target: x}\n",
                "  - {}\n",
                "  - merge: {strategy: JSON}\n",
                "- {extract: {key: ''}, sourceRef: {storeRef: {name: s}, generatorRef: {kind: Password, name: p}}}\n",
                "- {sourceRef: {generatorRef: {kind: Password, name: p}}}\n",
            )),
            &[
                "spec.dataFrom[0]",
                "spec.dataFrom[1]",
                "spec.dataFrom[2].find.name.regexp",
                "spec.dataFrom[2].rewrite[0].regexp.source",
                "spec.dataFrom[2].rewrite[1]",
                "spec.dataFrom[2].rewrite[2].merge.into",
                "spec.dataFrom[3]",
                "spec.dataFrom[3].sourceRef",
                "spec.dataFrom[3].extract.key",
            ],
        ),
        (
            "templateFrom targets for a Secret (case-insensitive) and template keys",
            es(&format!(
                "{ONE_ITEM}\ntarget:\n  template:\n    data: {{ok.key: v, 'not ok': v}}\n    templateFrom:\n    - {{literal: a}}\n    - {{target: data, literal: a}}\n    - {{target: ANNOTATIONS, literal: a}}\n    - {{target: Labels, literal: a}}\n    - {{target: spec.foo, literal: a}}\n    - secret: {{name: s, items: [{{key: k}}, {{key: k}}]}}\n      configMap: {{name: c, items: [{{key: k}}]}}"
            )),
            &[
                "spec.target.template.data[not ok]",
                "spec.target.template.templateFrom[4].target",
                "spec.target.template.templateFrom[5].secret.items[1].key",
            ],
        ),
        (
            "paths are fine for a manifest target",
            es(&format!(
                "{ONE_ITEM}\ntarget:\n  manifest: {{apiVersion: v1, kind: ConfigMap}}\n  template:\n    data: {{'not a secret key': v}}\n    templateFrom: [{{target: spec.foo, literal: a}}]"
            )),
            &[],
        ),
        (
            "a manifest naming v1 Secret is still a Secret target",
            es(&format!(
                "{ONE_ITEM}\ntarget:\n  manifest: {{apiVersion: v1, kind: Secret}}\n  template:\n    templateFrom: [{{target: type, literal: a}}]"
            )),
            &["spec.target.template.templateFrom[0].target"],
        ),
        (
            "privileged Secret types",
            es(&format!(
                "{ONE_ITEM}\ntarget:\n  template:\n    type: kubernetes.io/service-account-token\n    metadata:\n      annotations: {{kubernetes.io/service-account.name: admin}}\n    templateFrom: [{{target: annotations, literal: a}}]"
            )),
            &[
                "spec.target.template.metadata.annotations[kubernetes.io/service-account.name]",
                "spec.target.template.templateFrom[0].target",
            ],
        ),
        (
            "sync windows: schedule, duration, zero duration",
            es(&format!(
                "{ONE_ITEM}\nsyncWindows:\n  kind: allow\n  windows:\n  - {{schedule: '@weekly', duration: 1h}}\n  - {{schedule: '* * * *', duration: 1x}}\n  - {{schedule: '@every 1q', duration: 0s}}"
            )),
            &[
                "spec.syncWindows.windows[1].schedule",
                "spec.syncWindows.windows[1].duration",
                "spec.syncWindows.windows[2].schedule",
                "spec.syncWindows.windows[2].duration",
            ],
        ),
    ]);
}

#[test]
fn external_secret_accessors() {
    let parse = |spec: &str| serde_yaml::from_str::<ExternalSecret>(&es(spec)).unwrap();
    let plain = parse(ONE_ITEM);
    assert_eq!(
        plain.spec.refresh_interval().unwrap(),
        Duration::from_secs(3600),
        "defaulted like the CRD"
    );
    assert_eq!(
        plain.spec.refresh_policy(),
        syncret_crds::externalsecret::ExternalSecretRefreshPolicy::Periodic
    );
    assert_eq!(
        plain.spec.target.creation_policy,
        syncret_crds::ExternalSecretCreationPolicy::Owner
    );
    assert_eq!(
        plain.spec.target.deletion_policy,
        syncret_crds::ExternalSecretDeletionPolicy::Retain
    );
    assert_eq!(plain.target_name(), Some("x"));
    assert_eq!(
        parse(&format!("refreshInterval: '0'\n{ONE_ITEM}"))
            .spec
            .refresh_interval()
            .unwrap(),
        Duration::ZERO
    );
    assert_eq!(
        parse(&format!("refreshInterval: 1.5h\n{ONE_ITEM}"))
            .spec
            .refresh_interval()
            .unwrap(),
        Duration::from_secs(5400)
    );
    let bad = parse(&format!("refreshInterval: soon\n{ONE_ITEM}"))
        .spec
        .refresh_interval()
        .unwrap_err();
    assert_eq!(
        bad.to_string(),
        r#"spec.refreshInterval: time: invalid duration "soon""#
    );
    let with_ref = parse(&format!("secretStoreRef: {{name: s}}\ntarget: {{name: t}}\n{ONE_ITEM}"));
    assert_eq!(
        with_ref.spec.secret_store_ref.as_ref().unwrap().kind(),
        syncret_crds::StoreKind::SecretStore
    );
    assert_eq!(with_ref.target_name(), Some("t"));
}

const FAKE: &str = "provider:\n  fake:\n    data: [{key: a, value: b}]";

#[test]
fn stores() {
    check(&[
        ("fake store is valid", store("SecretStore", FAKE), &[]),
        ("no provider", store("SecretStore", "provider: {}"), &["spec.provider"]),
        (
            "two providers",
            store("SecretStore", "provider:\n  fake: {data: []}\n  vault: {server: v}"),
            &["spec.provider"],
        ),
        (
            "an unsupported key is reported once, not also as a count error",
            store("SecretStore", "provider:\n  fake: {data: []}\n  pulumi: {}"),
            &["spec.provider"],
        ),
        (
            "durations, retries and namespace regexes",
            store(
                "ClusterSecretStore",
                &format!(
                    "{FAKE}\nrefreshInterval: -5\nretrySettings: {{maxRetries: -1, retryInterval: '10'}}\nconditions:\n- namespaceRegexes: ['^ok$', '(']\n- namespaceRegexes: ['*']"
                ),
            ),
            &[
                "spec.refreshInterval",
                "spec.retrySettings.retryInterval",
                "spec.retrySettings.maxRetries",
                "spec.conditions[0].namespaceRegexes[1]",
                "spec.conditions[1].namespaceRegexes[0]",
            ],
        ),
        (
            "vault: every provider-level problem",
            store(
                "SecretStore",
                "provider:\n  vault:\n    server: ''\n    version: v1\n    checkAndSet: {required: true}\n    tls: {certSecretRef: {name: c}}\n    auth:\n      tokenSecretRef: {name: t}\n      jwt: {role: r}\n      appRole: {secretRef: {name: s}}",
            ),
            &[
                "spec.provider.vault.server",
                "spec.provider.vault.auth",
                "spec.provider.vault.auth.appRole",
                "spec.provider.vault.auth.jwt",
                "spec.provider.vault.tls",
                "spec.provider.vault.checkAndSet",
            ],
        ),
        (
            "openBao: auth and CA",
            store(
                "SecretStore",
                "provider:\n  openBao:\n    server: https://bao\n    caBundle: YQ==\n    caProvider: {type: Secret, name: ca}\n    auth:\n      appRole: {roleId: r, roleRef: {name: x}, secretRef: {name: s}}",
            ),
            &["spec.provider.openBao", "spec.provider.openBao.auth.appRole"],
        ),
        (
            "aws",
            store(
                "SecretStore",
                "provider:\n  aws:\n    service: SecretsManager\n    region: ' '\n    auth: {secretRef: {}, jwt: {}}\n    secretsManager: {forceDeleteWithoutRecovery: true, recoveryWindowInDays: 3}\n    customSessionTags: {esoStoreName: x, esoStoreKind: y}",
            ),
            &[
                "spec.provider.aws.region",
                "spec.provider.aws.auth",
                "spec.provider.aws.secretsManager",
                "spec.provider.aws.secretsManager.recoveryWindowInDays",
                "spec.provider.aws.customSessionTags",
                "spec.provider.aws.customSessionTags",
            ],
        ),
        (
            "azurekv: Azure Stack needs a custom cloud",
            store(
                "SecretStore",
                "provider:\n  azurekv: {vaultUrl: 'https://v', environmentType: AzureStackCloud}",
            ),
            &["spec.provider.azurekv.customCloudConfig"],
        ),
        (
            "kubernetes: cert and token need name and key",
            store(
                "SecretStore",
                "provider:\n  kubernetes:\n    auth:\n      cert: {clientCert: {name: c}, clientKey: {key: k}}\n      token: {bearerToken: {}}",
            ),
            &[
                "spec.provider.kubernetes.auth",
                "spec.provider.kubernetes.auth.cert.clientCert.key",
                "spec.provider.kubernetes.auth.cert.clientKey.name",
                "spec.provider.kubernetes.auth.token.bearerToken.name",
                "spec.provider.kubernetes.auth.token.bearerToken.key",
            ],
        ),
        (
            "webhook: timeout and duplicate secret names",
            store(
                "SecretStore",
                "provider:\n  webhook:\n    url: http://x\n    timeout: '5'\n    secrets:\n    - {name: a, secretRef: {name: s}}\n    - {name: a, secretRef: {name: t}}",
            ),
            &["spec.provider.webhook.timeout", "spec.provider.webhook.secrets[1].name"],
        ),
        (
            "fake: empty key and value, validation result out of range",
            store(
                "SecretStore",
                "provider:\n  fake: {data: [{key: '', value: ''}], validationResult: 7}",
            ),
            &[
                "spec.provider.fake.data[0].key",
                "spec.provider.fake.data[0].value",
                "spec.provider.fake.validationResult",
            ],
        ),
    ]);
    let msg = errors(&store("SecretStore", "provider:\n  fake: {data: []}\n  x: {}"));
    assert_eq!(msg, [r#"spec.provider: unsupported provider "x""#]);
    let msg = errors(&store("SecretStore", "provider: {}"));
    assert_eq!(msg, ["spec.provider: exactly one provider must be set"]);
}

#[test]
fn store_accessors() {
    let parse = |spec: &str| serde_yaml::from_str::<SecretStore>(&store("SecretStore", spec)).unwrap();
    let interval = |extra: &str| parse(&format!("{FAKE}\n{extra}")).spec.refresh_interval();
    assert_eq!(interval(""), Ok(None));
    assert_eq!(interval("refreshInterval: 0"), Ok(None));
    assert_eq!(interval("refreshInterval: '0s'"), Ok(None));
    assert_eq!(interval("refreshInterval: 300"), Ok(Some(Duration::from_secs(300))));
    assert_eq!(interval("refreshInterval: 1h"), Ok(Some(Duration::from_secs(3600))));
    assert!(
        interval("refreshInterval: '300'").is_err(),
        "a string needs a unit, as in Go"
    );
    let retry = parse(&format!("{FAKE}\nretrySettings: {{retryInterval: 10s}}"))
        .spec
        .retry_interval();
    assert_eq!(retry, Ok(Some(Duration::from_secs(10))));
    let css: ClusterSecretStore = serde_yaml::from_str(&store("ClusterSecretStore", FAKE)).unwrap();
    assert_eq!(
        css.spec.provider.kind(),
        Ok(syncret_crds::ProviderKind::Fake),
        "ClusterSecretStoreSpec derefs"
    );
    let k8s = parse("provider:\n  kubernetes: {}");
    let server = k8s.spec.provider.kubernetes.as_ref().unwrap().server();
    assert_eq!(server.url, "kubernetes.default");
    assert_eq!(
        k8s.spec.provider.kubernetes.as_ref().unwrap().remote_namespace,
        "default"
    );
}

#[test]
fn cluster_external_secret_prefixes_paths() {
    let yaml = "apiVersion: external-secrets.io/v1\nkind: ClusterExternalSecret\nmetadata: {name: x}\nspec:\n  refreshTime: 1y\n  externalSecretSpec:\n    dataFrom: [{}]\n";
    assert_eq!(
        paths(&errors(yaml)),
        ["spec.externalSecretSpec.dataFrom[0]", "spec.refreshTime"]
    );
}

#[test]
fn push_secrets() {
    let source = "selector: {secret: {name: src}}";
    check(&[
        (
            "valid",
            push(&format!(
                "secretStoreRefs: [{{name: s}}]\n{source}\ndata: [{{match: {{remoteRef: {{remoteKey: k}}}}}}]"
            )),
            &[],
        ),
        (
            "every problem",
            push(concat!(
                "refreshInterval: often\n",
                "secretStoreRefs: [{kind: ClusterSecretStore}]\n",
                "selector: {secret: {}}\n",
                "data: [{match: {remoteRef: {remoteKey: ''}}}]\n",
                "dataTo:\n",
                "- {remoteKey: bundle, rewrite: [{regexp: {source: '(', target: x}, transform: {template: y}}]}\n",
                "- {storeRef: {kind: SecretStore}, match: {regexp: '+'}}\n",
            )),
            &[
                "spec.refreshInterval",
                "spec.secretStoreRefs[0]",
                "spec.selector.secret",
                "spec.data[0].match.remoteRef.remoteKey",
                "spec.dataTo[0].storeRef",
                "spec.dataTo[0].rewrite",
                "spec.dataTo[0].rewrite[0]",
                "spec.dataTo[0].rewrite[0].regexp.source",
                "spec.dataTo[1].storeRef",
                "spec.dataTo[1].match.regexp",
            ],
        ),
        (
            "template checks apply too",
            push(&format!(
                "secretStoreRefs: [{{name: s}}]\n{source}\ntemplate: {{type: bootstrap.kubernetes.io/token}}"
            )),
            &["spec.template.type"],
        ),
    ]);
    let cps = "apiVersion: external-secrets.io/v1alpha1\nkind: ClusterPushSecret\nmetadata: {name: x}\nspec:\n  refreshTime: 1w\n  pushSecretSpec:\n    secretStoreRefs: [{}]\n    selector: {secret: {name: s}}\n";
    assert_eq!(
        paths(&errors(cps)),
        ["spec.pushSecretSpec.secretStoreRefs[0]", "spec.refreshTime"]
    );
}

#[test]
fn defaults_match_the_crd() {
    let spec = syncret_crds::ExternalSecretSpec::default();
    assert_eq!(spec.refresh_interval, "1h0m0s");
    assert_eq!(
        serde_json::to_value(&spec).unwrap(),
        serde_json::json!({"target": {"creationPolicy": "Owner", "deletionPolicy": "Retain"}, "refreshInterval": "1h0m0s"})
    );
    let parsed: syncret_crds::ExternalSecretSpec = serde_json::from_str("{}").unwrap();
    assert_eq!(parsed, spec, "a missing field deserializes to the CRD default");
}
