//! Hostile and malformed specs, table-driven, all at once in one namespace: bad durations, invalid and
//! catastrophic regexes, huge templates, template loops, 10 MB values, non-UTF-8 values with every
//! decodingStrategy, missing stores, wrong store kinds, a ClusterSecretStore whose conditions exclude the
//! namespace, credentials in another namespace. Each ExternalSecret gets a clear condition naming the field (or is
//! refused at admission with the field named, or syncs correctly when the input is legal), nothing panics, the
//! well-formed ExternalSecrets next to them keep syncing, and the operator's memory stays bounded.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, PostParams};
use syncret_crds::{ClusterSecretStore, ExternalSecret, SecretStore};
use syncret_tests::operator::Operator;
use syncret_tests::servers::OpenBao;
use syncret_tests::{ControlPlane, apply_yaml, eventually};

use crate::common::leaks::{self, Values};
use crate::common::{es, fake_store, secret_value, vault_put};

/// What must happen to one hostile ExternalSecret.
#[derive(Clone, Debug)]
enum Expect {
    /// Ready=False, SecretSyncedError, the message contains every part (the field, the cause); no Secret.
    Condition(&'static [&'static str]),
    /// The apiserver refuses the object; its error contains every part (the field).
    Admission(&'static [&'static str]),
    /// The store is not ready: the ExternalSecret says so (as ESO), the store's own Ready condition names the
    /// field and the cause.
    StoreNotReady(&'static str, &'static [&'static str]),
    /// Legal input: Ready=True and the Secret holds exactly these bytes at this key.
    Synced(&'static str, Vec<u8>),
}

struct Case {
    name: &'static str,
    what: &'static str,
    spec: String,
    expect: Expect,
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

fn data(store: &str, refs: &str) -> String {
    format!("  secretStoreRef: {{name: {store}}}\n  data:\n{refs}")
}

fn one(store: &str, remote_ref: &str) -> String {
    data(store, &format!("  - {{secretKey: out, remoteRef: {remote_ref}}}\n"))
}

fn templated(tpl: &str) -> String {
    format!(
        "  secretStoreRef: {{name: s}}\n  target:\n    template:\n      data:\n        x: {}\n  data:\n  - {{secretKey: k, remoteRef: {{key: k}}}}\n",
        serde_json::to_string(tpl).unwrap_or_default()
    )
}

fn from(spec: &str) -> String {
    format!("  secretStoreRef: {{name: s}}\n  dataFrom:\n{spec}")
}

fn cases(excluded_css: &str) -> Vec<Case> {
    use Expect::*;
    let c = |name, what, spec: String, expect| Case {
        name,
        what,
        spec,
        expect,
    };
    let latin1 = vec![0xffu8, 0xfe, 0x41];
    vec![
        // Durations.
        c("dur-unit", "refreshInterval with a bad unit", format!("  refreshInterval: 1x\n{}", one("s", "{key: k}")), Condition(&["spec.refreshInterval"])),
        c("dur-neg", "negative refreshInterval", format!("  refreshInterval: -5s\n{}", one("s", "{key: k}")), Condition(&["spec.refreshInterval"])),
        c("dur-huge", "refreshInterval overflowing", format!("  refreshInterval: 99999999999999999h\n{}", one("s", "{key: k}")), Condition(&["spec.refreshInterval"])),
        c("dur-nounit", "refreshInterval without unit", format!("  refreshInterval: '5'\n{}", one("s", "{key: k}")), Condition(&["spec.refreshInterval"])),
        c("dur-dots", "refreshInterval 1.5.5s", format!("  refreshInterval: 1.5.5s\n{}", one("s", "{key: k}")), Condition(&["spec.refreshInterval"])),
        c("dur-junk", "refreshInterval of emoji", format!("  refreshInterval: '⏰'\n{}", one("s", "{key: k}")), Condition(&["spec.refreshInterval"])),
        // Regexes.
        c("re-unclosed", "find.name.regexp unclosed", from("  - find: {name: {regexp: '(unclosed'}}\n"), Condition(&["spec.dataFrom[0].find.name.regexp"])),
        c("re-huge", "find.name.regexp over the size limit", from("  - find: {name: {regexp: 'a{1000}{1000}'}}\n"), Condition(&["spec.dataFrom[0].find.name.regexp"])),
        c("re-catastrophic", "catastrophic-backtracking find regexp (linear here)", from("  - find: {name: {regexp: '^(a+)+$'}}\n"), Synced(leak(&"a".repeat(180)), b"catastrophic".to_vec())),
        c("re-rewrite", "rewrite regexp source invalid", from("  - extract: {key: json}\n    rewrite:\n    - regexp: {source: '[', target: x}\n"), Condition(&["spec.dataFrom[0].rewrite[0].regexp.source"])),
        c("re-dupname", "rewrite regexp with a duplicate group name", from("  - extract: {key: json}\n    rewrite:\n    - regexp: {source: '(?P<n>a)(?P<n>b)', target: x}\n"), Condition(&["spec.dataFrom[0].rewrite[0].regexp.source"])),
        c("re-tag", "find.tags regexp-looking value is literal", from("  - find: {name: {regexp: '(?'}}\n"), Condition(&["spec.dataFrom[0].find.name.regexp"])),
        c("re-template", "regexMatch with an invalid pattern (false, as sprig)", templated("{{ regexMatch \"(\" .k }}"), Synced("x", b"false".to_vec())),
        c("re-template-must", "mustRegexMatch with an invalid pattern", templated("{{ mustRegexMatch \"(\" .k }}"), Condition(&["spec.target.template.data[x]"])),
        c("re-template-catastrophic", "catastrophic pattern over a long input in a template", templated("{{ regexMatch \"^(a|aa)+$\" (repeat 5000 \"a\") }}"), Synced("x", b"true".to_vec())),
        // Templates.
        c("tpl-huge-output", "template output of 100 MB", templated("{{ repeat 100000000 \"x\" }}"), Condition(&["spec.target.template.data[x]"])),
        c("tpl-loop", "template calling itself forever", templated("{{ define \"a\" }}{{ template \"a\" }}{{ end }}{{ template \"a\" }}"), Condition(&["spec.target.template.data[x]"])),
        c("tpl-mutual-loop", "two templates calling each other", templated("{{ define \"a\" }}{{ template \"b\" }}{{ end }}{{ define \"b\" }}{{ template \"a\" }}{{ end }}{{ template \"a\" }}"), Condition(&["spec.target.template.data[x]"])),
        c("tpl-nested-range", "10^10 loop iterations", templated("{{ range until 100000 }}{{ range until 100000 }}x{{ end }}{{ end }}"), Condition(&["spec.target.template.data[x]"])),
        c("tpl-doubling", "a value doubled 40 times", templated("{{ $s := \"xx\" }}{{ range until 40 }}{{ $s = print $s $s }}{{ end }}{{ len $s }}"), Condition(&["spec.target.template.data[x]"])),
        c("tpl-unclosed", "unclosed action", templated("{{ .k "), Condition(&["spec.target.template.data[x]"])),
        c("tpl-unknown-func", "unknown function", templated("{{ nosuchfunc .k }}"), Condition(&["spec.target.template.data[x]", "nosuchfunc"])),
        c("tpl-missing-key", "missing key", templated("{{ .missing }}"), Condition(&["spec.target.template.data[x]"])),
        c("tpl-fail", "fail function", templated("{{ fail \"stop here\" }}"), Condition(&["spec.target.template.data[x]", "stop here"])),
        c("tpl-b64dec", "b64dec of garbage (Go's error text, as sprig)", templated("{{ .k | b64dec }}"), Synced("x", b"illegal base64 data at input byte 5".to_vec())),
        c("tpl-deep-parens", "10 000 nested parentheses", templated(&format!("{{{{ {}1{} }}}}", "(".repeat(10_000), ")".repeat(10_000))), Condition(&["spec.target.template.data[x]"])),
        c("tpl-deep-if", "3 000 nested ifs", templated(&format!("{}x{}", "{{ if 1 }}".repeat(3000), "{{ end }}".repeat(3000))), Condition(&["spec.target.template.data[x]"])),
        c("tpl-from-cm", "templateFrom a missing ConfigMap", "  secretStoreRef: {name: s}\n  target:\n    template:\n      templateFrom:\n      - configMap: {name: nope, items: [{key: a}]}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n".into(), Condition(&["spec.target.template.templateFrom[0]", "nope"])),
        c("tpl-from-secret", "templateFrom a missing Secret", "  secretStoreRef: {name: s}\n  target:\n    template:\n      templateFrom:\n      - secret: {name: nope, items: [{key: a}]}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n".into(), Condition(&["spec.target.template.templateFrom[0]", "nope"])),
        c("tpl-from-cm-key", "templateFrom a missing ConfigMap key", "  secretStoreRef: {name: s}\n  target:\n    template:\n      templateFrom:\n      - configMap: {name: tpl, items: [{key: absent}]}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n".into(), Condition(&["spec.target.template.templateFrom[0]", "absent"])),
        c("tpl-engine", "template engineVersion v1", "  secretStoreRef: {name: s}\n  target:\n    template:\n      engineVersion: v1\n      data: {x: y}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n".into(), Admission(&["engineVersion"])),
        c("tpl-type-tls", "type kubernetes.io/tls without tls.crt", "  secretStoreRef: {name: s}\n  target:\n    template:\n      type: kubernetes.io/tls\n      data: {x: y}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n".into(), Condition(&["tls.crt"])),
        c("tpl-bad-label", "template metadata with an invalid label", "  secretStoreRef: {name: s}\n  target:\n    template:\n      metadata:\n        labels: {'bad label!': x}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n".into(), Condition(&["bad label!"])),
        // Values: decoding strategies, non-UTF-8, NUL bytes, size.
        c("val-b64-garbage", "Base64 decoding of a non-base64 value", one("s", "{key: notb64, decodingStrategy: Base64}"), Condition(&["spec.data[0]", "Base64"])),
        c("val-b64url-garbage", "Base64URL decoding of a non-base64 value", one("s", "{key: notb64, decodingStrategy: Base64URL}"), Condition(&["spec.data[0]", "Base64URL"])),
        c("val-auto-garbage", "Auto decoding of a non-base64 value keeps it", one("s", "{key: notb64, decodingStrategy: Auto}"), Synced("out", b"%%%not-base64%%%".to_vec())),
        c("val-bin-none", "non-UTF-8 value, decodingStrategy None", one("kube", "{key: bin, property: latin1, decodingStrategy: None}"), Synced("out", latin1.clone())),
        c("val-bin-b64", "non-UTF-8 value, decodingStrategy Base64", one("kube", "{key: bin, property: latin1, decodingStrategy: Base64}"), Condition(&["spec.data[0]", "Base64"])),
        c("val-bin-b64url", "non-UTF-8 value, decodingStrategy Base64URL", one("kube", "{key: bin, property: latin1, decodingStrategy: Base64URL}"), Condition(&["spec.data[0]", "Base64URL"])),
        c("val-bin-auto", "non-UTF-8 value, decodingStrategy Auto", one("kube", "{key: bin, property: latin1, decodingStrategy: Auto}"), Synced("out", latin1.clone())),
        c("val-bin-extract-b64", "dataFrom.extract of non-UTF-8 values with Base64", "  secretStoreRef: {name: kube}\n  dataFrom:\n  - extract: {key: bin, decodingStrategy: Base64}\n".into(), Condition(&["spec.dataFrom[0]", "Base64"])),
        c("val-bin-property", "property path into a non-UTF-8 value", one("kube", "{key: bin, property: latin1.a.b}"), Condition(&["spec.data[0]", "latin1.a.b"])),
        c("val-bin-template", "non-UTF-8 value through a template function", "  secretStoreRef: {name: kube}\n  target:\n    template:\n      data: {x: '{{ .v | upper }}'}\n  data:\n  - {secretKey: v, remoteRef: {key: bin, property: latin1}}\n".into(), Synced("x", "\u{fffd}\u{fffd}A".as_bytes().to_vec())),
        c("val-nul-fail", "NUL bytes with nullBytePolicy Fail", one("kube", "{key: bin, property: nul, nullBytePolicy: Fail}"), Condition(&["spec.data[0]", "null bytes"])),
        c("val-nul-ignore", "NUL bytes kept by default", one("kube", "{key: bin, property: nul}"), Synced("out", b"a\0b".to_vec())),
        c("val-not-json", "property of a value that is not JSON", one("s", "{key: k, property: a}"), Condition(&["spec.data[0]", "not JSON"])),
        c("val-missing-prop", "property absent", one("s", "{key: json, property: nope}"), Condition(&["spec.data[0]", "nope"])),
        c("val-extract-notjson", "dataFrom.extract of a value that is not JSON", from("  - extract: {key: k}\n"), Condition(&["spec.dataFrom[0]", "not a JSON object"])),
        c("val-10mb", "a 10 MB remote value", one("bao", "{key: big, property: v}"), Condition(&["spec.target", "would hold 10485760 bytes", "at most 1048576 bytes"])),
        c("val-10mb-template", "a 10 MB value doubled by a template", "  secretStoreRef: {name: bao}\n  target:\n    template:\n      data: {x: '{{ .v }}{{ .v }}'}\n  data:\n  - {secretKey: v, remoteRef: {key: big, property: v}}\n".into(), Condition(&["spec.target.template.data[x]"])),
        c("val-missing-key", "remote key absent", one("s", "{key: absent}"), Condition(&["spec.data[0]", "absent"])),
        // Keys and names.
        c("key-slash", "secretKey with a slash", data("s", "  - {secretKey: 'a/b', remoteRef: {key: k}}\n"), Admission(&["spec.data[0].secretKey"])),
        c("key-rewrite-slash", "rewrite producing an invalid key", from("  - extract: {key: json}\n    rewrite:\n    - regexp: {source: '^a$', target: 'x/y'}\n"), Condition(&["x/y"])),
        c("key-transform-bad", "rewrite transform template that does not parse", from("  - extract: {key: json}\n    rewrite:\n    - transform: {template: '{{ .value '}\n"), Condition(&["spec.dataFrom[0]", "rewrite[0]"])),
        c("key-merge-notjson", "rewrite merge of values that are not JSON objects", from("  - extract: {key: json}\n    rewrite:\n    - merge: {into: all, priority: [zzz]}\n"), Condition(&["spec.dataFrom[0]", "rewrite[0]", "not a JSON object"])),
        c("key-generator", "dataFrom generatorRef", "  dataFrom:\n  - sourceRef: {generatorRef: {apiVersion: generators.external-secrets.io/v1alpha1, kind: Password, name: p}}\n".into(), Condition(&["generatorRef"])),
        c("key-empty-extract", "dataFrom.extract with an empty key", from("  - extract: {key: ''}\n"), Condition(&["spec.dataFrom[0].extract.key"])),
        c("target-name-bad", "target name that is not a DNS name", format!("  target: {{name: 'Bad_Name!'}}\n{}", one("s", "{key: k}")), Admission(&["spec.target.name"])),
        c("target-name-long", "target name of 300 characters", format!("  target: {{name: {}}}\n{}", "a".repeat(300), one("s", "{key: k}")), Admission(&["spec.target.name"])),
        // Stores.
        c("store-missing", "SecretStore that does not exist", one("nope", "{key: k}"), Condition(&["SecretStore \"nope\""])),
        c("store-missing-cluster", "ClusterSecretStore that does not exist", "  secretStoreRef: {name: nope-cluster, kind: ClusterSecretStore}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n".into(), Condition(&["ClusterSecretStore \"nope-cluster\""])),
        c("store-wrong-kind", "store kind that is not a store", "  secretStoreRef: {name: s, kind: ConfigMap}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n".into(), Admission(&["kind"])),
        c("store-namespaced-as-cluster", "a SecretStore named as a ClusterSecretStore", "  secretStoreRef: {name: s, kind: ClusterSecretStore}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n".into(), Condition(&["ClusterSecretStore \"s\""])),
        c("store-not-ready", "a store that failed validation", one("broken", "{key: k}"), StoreNotReady("broken", &["validation"])),
        c("store-excluded", "a ClusterSecretStore whose conditions exclude this namespace", format!("  secretStoreRef: {{name: {excluded_css}, kind: ClusterSecretStore}}\n  data:\n  - {{secretKey: k, remoteRef: {{key: k}}}}\n"), Condition(Box::leak(Box::new([leak(excluded_css), "not allowed", "spec.condition"])))),
        c("store-cross-ns-creds", "a SecretStore whose token is in another namespace", one("crossns", "{key: bin, property: latin1}"), StoreNotReady("crossns", &["bearerToken.namespace", "not allowed"])),
        c("store-per-ref-missing", "a sourceRef.storeRef to a missing store", "  secretStoreRef: {name: s}\n  data:\n  - {secretKey: k, remoteRef: {key: k}, sourceRef: {storeRef: {name: gone}}}\n".into(), Condition(&["SecretStore \"gone\""])),
        c("store-none", "no store at all", "  data:\n  - {secretKey: k, remoteRef: {key: k}}\n".into(), Condition(&["spec.data[0]", "no store"])),
    ]
}

/// The admin token of the test kubeconfig (the "remote cluster" credentials for the kubernetes provider).
pub fn admin_token(cp: &ControlPlane) -> anyhow::Result<String> {
    let kc: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(cp.kubeconfig())?)?;
    kc["users"][0]["user"]["token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no token in the test kubeconfig"))
}

/// A kubernetes-provider SecretStore reading `remote_ns` of the test cluster with the token in Secret
/// `remote-token` (optionally of another namespace).
pub fn kube_store(
    cp: &ControlPlane,
    name: &str,
    class: &str,
    remote_ns: &str,
    token_ns: Option<&str>,
) -> anyhow::Result<String> {
    let (server, ca) = cp.server_and_ca()?;
    let mut token = serde_json::json!({"name": "remote-token", "key": "token"});
    if let Some(ns) = token_ns {
        token["namespace"] = ns.into();
    }
    Ok(serde_json::json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": name},
        "spec": {"controller": class, "provider": {"kubernetes": {
            "remoteNamespace": remote_ns,
            "server": {"url": server, "caBundle": base64::engine::general_purpose::STANDARD.encode(&ca)},
            "auth": {"token": {"bearerToken": token}}}}}
    })
    .to_string())
}

fn rss_kib() -> u64 {
    crate::common::process::usage(std::process::id())
        .map(|u| u.rss_kib)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_specs_get_clear_conditions_and_harm_nothing() -> anyhow::Result<()> {
    crate::common::init();
    count_panics();
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("rel-hostile").await?;
    let other = cp.namespace("rel-hostile-other").await?;
    let bao = OpenBao::start().await?;
    let mut values = Values::default();
    let op = Operator::start(&ns).await?;
    let class = op.class.clone();
    let secrets = ns.api::<Secret>();

    // Stores and remote values.
    let token = admin_token(cp)?;
    values.add(&token);
    for api in [&secrets, &other.api::<Secret>()] {
        apply_yaml(
            api,
            &serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "remote-token"},
                "stringData": {"token": token}})
            .to_string(),
        )
        .await?;
    }
    let mut bin = Secret::default();
    bin.metadata.name = Some("bin".into());
    bin.data = Some(BTreeMap::from([
        ("latin1".to_string(), ByteString(vec![0xff, 0xfe, 0x41])),
        ("nul".to_string(), ByteString(b"a\0b".to_vec())),
    ]));
    other.api::<Secret>().create(&PostParams::default(), &bin).await?;
    let plain = secret_value("plain");
    let good = secret_value("good");
    values.add(&plain);
    values.add(&good);
    let pairs = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = vec![
            ("k".into(), plain.clone()),
            ("json".into(), r#"{"a":"1","b":"2"}"#.into()),
            ("notb64".into(), "%%%not-base64%%%".into()),
            ("a".repeat(180), "catastrophic".into()),
        ];
        p.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        p
    };
    let ss = ns.api::<SecretStore>();
    apply_yaml(&ss, &fake_store("s", &class, &pairs(&[]))).await?;
    apply_yaml(&ss, &fake_store("good", &class, &[("g".into(), good.clone())])).await?;
    apply_yaml(&ss, &kube_store(cp, "kube", &class, &other.name, None)?).await?;
    apply_yaml(&ss, &kube_store(cp, "crossns", &class, &other.name, Some(&other.name))?).await?;
    apply_yaml(
        &ss,
        &format!(
            "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {{name: broken}}\nspec:\n  controller: {class}\n  provider:\n    fake:\n      data: []\n      validationResult: 2\n"
        ),
    )
    .await?;
    apply_yaml(
        &secrets,
        &serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "vault-token"},
            "stringData": {"token": bao.root_token()}})
        .to_string(),
    )
    .await?;
    apply_yaml(
        &ss,
        &format!(
            "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {{name: bao}}\nspec:\n  controller: {class}\n  provider:\n    vault:\n      server: {}\n      path: secret\n      version: v2\n      auth:\n        tokenSecretRef: {{name: vault-token, key: token}}\n",
            bao.addr()
        ),
    )
    .await?;
    let big = "b".repeat(10 << 20);
    vault_put(bao.addr(), bao.root_token(), "big", serde_json::json!({"v": big})).await?;
    apply_yaml(
        &ns.api::<k8s_openapi::api::core::v1::ConfigMap>(),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: tpl}\ndata: {a: '{{ .k }}'}\n",
    )
    .await?;
    let excluded = syncret_tests::unique_name("rel-excluding");
    let css: Api<ClusterSecretStore> = Api::all(ns.client.clone());
    apply_yaml(
        &css,
        &serde_json::json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore",
            "metadata": {"name": excluded},
            "spec": {"controller": class, "conditions": [{"namespaces": [other.name]}],
                "provider": {"fake": {"data": [{"key": "k", "value": plain}]}}}})
        .to_string(),
    )
    .await?;

    // Bystanders first, synced.
    let ess = ns.api::<ExternalSecret>();
    const BYSTANDERS: usize = 5;
    for i in 0..BYSTANDERS {
        apply_yaml(
            &ess,
            &es(
                &format!("bystander{i}"),
                "  refreshInterval: 1s\n  secretStoreRef: {name: good}\n  data:\n  - {secretKey: g, remoteRef: {key: g}}\n",
            ),
        )
        .await?;
    }
    for i in 0..BYSTANDERS {
        eventually(Duration::from_secs(60), &format!("bystander{i} synced"), || async {
            let s = secrets.get_opt(&format!("bystander{i}")).await.ok()??;
            (s.data?.get("g")?.0 == good.as_bytes()).then_some(())
        })
        .await?;
    }
    let rss_before = rss_kib();
    let cpu_before = crate::common::process::usage(std::process::id())?.cpu_seconds;

    // Every hostile ExternalSecret at once.
    let cases = cases(&excluded);
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let mut admission = BTreeMap::new();
    for case in &cases {
        match apply_yaml(&ess, &es(case.name, &case.spec)).await {
            Ok(_) => {}
            Err(e) => {
                admission.insert(case.name, format!("{e:#}"));
            }
        }
    }
    // A change on the good store while the hostile ones are being processed: bystanders follow.
    let good2 = secret_value("good2");
    values.add(&good2);
    apply_yaml(&ss, &fake_store("good", &class, &[("g".into(), good2.clone())])).await?;

    let t = Instant::now();
    let deadline = t + Duration::from_secs(120);
    let mut failures: BTreeMap<&str, String>;
    loop {
        failures = BTreeMap::new();
        let list: BTreeMap<String, ExternalSecret> = ess
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter_map(|e| Some((e.metadata.name.clone()?, e)))
            .collect();
        for case in &cases {
            let ready = list.get(case.name).and_then(|e| {
                e.status
                    .as_ref()?
                    .conditions
                    .iter()
                    .find(|c| c.type_ == syncret_crds::condition::ExternalSecretConditionType::Ready)
                    .map(|c| {
                        (
                            c.status.clone(),
                            c.reason.clone().unwrap_or_default(),
                            c.message.clone().unwrap_or_default(),
                        )
                    })
            });
            let problem = match (&case.expect, admission.get(case.name), ready) {
                (Expect::Admission(parts), Some(err), _) => (!parts.iter().all(|p| err.contains(p)))
                    .then(|| format!("admission error without {parts:?}: {err}")),
                (_, Some(err), _) => Some(format!("refused at admission: {err}")),
                (Expect::Admission(_), None, r) => Some(format!("accepted at admission; condition {r:?}")),
                (_, None, None) => Some("no condition yet".into()),
                (Expect::Condition(parts), None, Some((s, r, m))) => {
                    (!(s == "False" && r == "SecretSyncedError" && parts.iter().all(|p| m.contains(p))))
                        .then(|| format!("condition {s}/{r}: {m}"))
                }
                (Expect::StoreNotReady(store, parts), None, Some((s, r, m))) => {
                    let sm = ss
                        .get(store)
                        .await?
                        .status
                        .and_then(|st| st.conditions.into_iter().find(|c| c.type_ == "Ready"))
                        .and_then(|c| c.message)
                        .unwrap_or_default();
                    (!(s == "False"
                        && r == "SecretSyncedError"
                        && m.contains(&format!("SecretStore \"{store}\" is not ready"))
                        && parts.iter().all(|p| sm.contains(p))))
                    .then(|| format!("condition {s}/{r}: {m}; store: {sm}"))
                }
                (Expect::Synced(key, want), None, Some((s, r, m))) => {
                    if s != "True" {
                        Some(format!("condition {s}/{r}: {m}"))
                    } else {
                        let data = secrets
                            .get_opt(case.name)
                            .await?
                            .and_then(|s| s.data)
                            .unwrap_or_default();
                        let got = data.get(*key).map(|v| v.0.clone());
                        (got.as_deref() != Some(want.as_slice())).then(|| {
                            format!(
                                "synced, but {key} = {got:?}; keys {:?}",
                                data.keys().collect::<Vec<_>>()
                            )
                        })
                    }
                }
            };
            if let Some(p) = problem {
                failures.insert(case.name, p);
            }
        }
        if failures.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let settle = t.elapsed();
    if !failures.is_empty() {
        let mut msg = format!("{} of {} hostile cases not as expected:\n", failures.len(), cases.len());
        for (name, p) in &failures {
            msg.push_str(&format!("- {name}: {p}\n"));
        }
        anyhow::bail!(msg);
    }
    // Failed ExternalSecrets created no Secret (none half-written).
    for case in cases
        .iter()
        .filter(|c| matches!(c.expect, Expect::Condition(_) | Expect::StoreNotReady(..)))
    {
        assert!(
            secrets.get_opt(case.name).await?.is_none(),
            "{}: a Secret was written",
            case.name
        );
    }
    // Bystanders followed the change.
    for i in 0..BYSTANDERS {
        eventually(Duration::from_secs(30), &format!("bystander{i} updated"), || async {
            let s = secrets.get_opt(&format!("bystander{i}")).await.ok()??;
            (s.data?.get("g")?.0 == good2.as_bytes()).then_some(())
        })
        .await?;
    }
    // A few more seconds of retries, then resources.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let usage = crate::common::process::usage(std::process::id())?;
    let rss_after = usage.rss_kib;
    println!(
        "hostile: {} cases ({} refused at admission), all settled in {:.1}s; test process CPU {:.1}s over the run, \
         RSS {} MiB -> {} MiB (peak {} MiB)",
        cases.len(),
        admission.len(),
        settle.as_secs_f64(),
        usage.cpu_seconds - cpu_before,
        rss_before / 1024,
        rss_after / 1024,
        usage.peak_rss_kib / 1024,
    );
    for case in &cases {
        let m = crate::common::es_condition(&ess, case.name)
            .await
            .map(|c| c.2)
            .unwrap_or_else(|| admission.get(case.name).cloned().unwrap_or_default());
        println!(
            "  {:<28} {:<60} {}",
            case.name,
            case.what,
            m.chars().take(200).collect::<String>()
        );
    }
    // Memory bounded: a 10 MB value and a 100 MB template request do not grow the process by gigabytes.
    assert!(
        usage.peak_rss_kib < 2 << 20,
        "peak RSS {} MiB",
        usage.peak_rss_kib / 1024
    );
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "no panic anywhere in the process");
    let metrics = op.ctx().metrics.render().unwrap_or_default();
    leaks::check(&values, &ns.client, &[&ns.name, &other.name], &metrics).await?;
    op.stop().await;
    Ok(())
}

/// Hostile specs ESO v2.9 refuses at apply (its CRD schema, or its webhook decoding `metav1.Duration`); the
/// cross-namespace SecretStore too (its kubernetes provider's `ValidateStore`).
const ESO_REFUSES: &[&str] = &[
    "dur-unit",
    "dur-huge",
    "dur-nounit",
    "dur-dots",
    "dur-junk",
    "tpl-engine",
    "key-slash",
    "target-name-bad",
    "target-name-long",
    "store-wrong-kind",
];

/// The same hostile specs against the generated admission policies (`deploy/admission/`, bound to this
/// test's objects only), by server-side dry-run: each is refused at apply exactly when the schema refuses it
/// or `validate()` finds a problem the rule table enforces at apply, naming the field; the ones that only a
/// reconcile can judge (remote values, templates, missing stores) are accepted. So is every spec ESO refuses,
/// and the SecretStore whose token is in another namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_specs_at_apply_with_the_admission_policies() -> anyhow::Result<()> {
    use syncret_crds::FieldError;
    use syncret_tests::admission::{Policies, names_field};
    crate::common::init();
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("rel-hostile-admission").await?;
    let policies = Policies::install(&ns.client, &ns.name).await?;
    let mut problems = Vec::new();
    let (mut by_schema, mut by_policy, mut accepted) = (0, 0, 0);
    let all = cases("excluded");
    for case in &all {
        let manifest: serde_json::Value = serde_yaml::from_str(&es(case.name, &case.spec))?;
        let enforced: Vec<FieldError> = serde_json::from_value::<ExternalSecret>(manifest.clone())
            .map(|e| e.spec.validate())
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.rule.is_some_and(|r| r.def().refused_at_apply()))
            .collect();
        let schema = matches!(case.expect, Expect::Admission(_));
        match policies.verdict(&ns.name, &manifest).await? {
            Some(message) if schema => {
                by_schema += 1;
                if let Expect::Admission(parts) = &case.expect
                    && !parts.iter().all(|p| message.contains(p))
                {
                    problems.push(format!("{}: refused without {parts:?}: {message}", case.name));
                }
            }
            Some(message) => {
                by_policy += 1;
                let found = serde_json::from_value::<ExternalSecret>(manifest.clone())
                    .map(|e| e.spec.validate())
                    .unwrap_or_default();
                if !found.iter().any(|e| names_field(&message, e)) {
                    problems.push(format!(
                        "{}: refused, but not naming what validate() finds ({found:?}): {message}",
                        case.name
                    ));
                }
            }
            None => {
                accepted += 1;
                if schema || !enforced.is_empty() || ESO_REFUSES.contains(&case.name) {
                    problems.push(format!(
                        "{} ({}): accepted at apply; validate() finds {enforced:?}",
                        case.name, case.what
                    ));
                }
            }
        }
    }
    let cross = kube_store(cp, "crossns", "c", "elsewhere", Some("elsewhere"))?;
    let cross: serde_json::Value = serde_json::from_str(&cross)?;
    match policies.verdict(&ns.name, &cross).await? {
        Some(m) if m.contains("bearerToken.namespace") => by_policy += 1,
        other => problems.push(format!("the cross-namespace SecretStore: {other:?}")),
    }
    eprintln!(
        "hostile specs at apply: {} specs; {by_schema} refused by the CRD schema, {by_policy} by the admission \
         policies (with the cross-namespace SecretStore), {accepted} accepted (runtime problems only a reconcile \
         can see)",
        all.len() + 1
    );
    policies.uninstall().await;
    anyhow::ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}
