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

fn configmap() -> TargetKind {
    TargetKind {
        group: String::new(),
        version: "v1".into(),
        kind: "ConfigMap".into(),
        plural: "configmaps".into(),
        namespaced: true,
    }
}

fn crd(group: &str, kind: &str, plural: &str) -> TargetKind {
    TargetKind {
        group: group.into(),
        version: "v1".into(),
        kind: kind.into(),
        plural: plural.into(),
        namespaced: true,
    }
}

fn on(resources: &[&str]) -> GenericTargets {
    GenericTargets {
        enabled: true,
        resources: resources.iter().map(|r| r.to_string()).collect(),
    }
}

fn no_sources() -> TemplateSources {
    TemplateSources::default()
}

#[test]
fn only_allowed_namespaced_kinds_and_never_the_dangerous_ones() {
    assert_eq!(
        allowed(&GenericTargets::default(), &configmap()),
        Err(TargetError::Disabled)
    );
    assert_eq!(
        TargetError::Disabled.to_string(),
        "spec.target.manifest: generic targets are disabled. Enable with --unsafe-allow-generic-targets flag"
    );
    let defaults = GenericTargets {
        enabled: true,
        ..Default::default()
    };
    assert_eq!(allowed(&defaults, &configmap()), Ok(()));
    let app = crd("argoproj.io", "Application", "applications");
    assert_eq!(
        allowed(&defaults, &app).unwrap_err().to_string(),
        "spec.target.manifest: applications.argoproj.io is not in --generic-target-resources (configmaps)"
    );
    assert_eq!(allowed(&on(&["configmaps", "Applications.argoproj.io"]), &app), Ok(()));
    // Listed or not: never RBAC, syncret's own API, pods, service accounts, leases, Secrets through a manifest.
    for (k, why) in [
        (
            crd("rbac.authorization.k8s.io", "RoleBinding", "rolebindings"),
            "it grants permissions",
        ),
        (
            crd("external-secrets.io", "SecretStore", "secretstores"),
            "it is syncret's own API",
        ),
        (
            crd("coordination.k8s.io", "Lease", "leases"),
            "leases elect controllers' leaders",
        ),
        (crd("", "Pod", "pods"), "it runs code"),
        (crd("", "ServiceAccount", "serviceaccounts"), "it is an identity"),
    ] {
        let all = on(&[&k.resource()]);
        assert_eq!(
            allowed(&all, &k),
            Err(TargetError::Never {
                resource: k.resource(),
                why
            }),
            "{}",
            k.resource()
        );
    }
    let mut cluster = crd("example.com", "Tenant", "tenants");
    cluster.namespaced = false;
    assert_eq!(
        allowed(&on(&["tenants.example.com"]), &cluster)
            .unwrap_err()
            .to_string(),
        "spec.target.manifest: tenants.example.com is cluster-scoped; a target must live in the ExternalSecret's \
         namespace"
    );
}

#[test]
fn without_a_template_a_configmap_gets_data_and_anything_else_spec_data() {
    let e = es(r#"
metadata: {name: app, namespace: team, labels: {team: a}, annotations: {note: x}}
spec:
  target: {name: app-config, manifest: {apiVersion: v1, kind: ConfigMap}}
"#);
    let r = render(
        &e,
        &configmap(),
        &data(&[("host", "db"), ("port", "5432")]),
        &no_sources(),
        (&syncret_template::Delims::default()).into(),
        None,
    )
    .unwrap();
    assert_eq!(r.object["apiVersion"], "v1");
    assert_eq!(r.object["kind"], "ConfigMap");
    assert_eq!(r.object["metadata"]["name"], "app-config");
    assert_eq!(r.object["metadata"]["namespace"], "team");
    assert_eq!(r.object["data"], json!({"host": "db", "port": "5432"}));
    // The ExternalSecret's labels, the managed label, and (creationPolicy Owner, the default) created-by.
    assert_eq!(
        r.object["metadata"]["labels"],
        json!({"team": "a", "reconcile.external-secrets.io/managed": "true",
               "reconcile.external-secrets.io/created-by": hash::owner_label("team", "app")})
    );
    assert_eq!(r.object["metadata"]["annotations"]["note"], "x");
    assert_eq!(r.object["metadata"]["annotations"][ANNOTATION_DATA_HASH], json!(r.hash));
    // ESO's hash of a ConfigMap's data: Go's %+v of map[string]string, `map[k0:v 0 k1:v1]` (checked with Go).
    let cm = json!({"data": {"k1": "v1", "k0": "v 0"}});
    assert_eq!(
        content_hash(&cm).unwrap(),
        "a03610a4fa66bc590a4328fd06455e414fc7a8ab25ae3e173cdcc854"
    );
    // The default creationPolicy is Owner: a controller reference.
    assert_eq!(r.object["metadata"]["ownerReferences"][0]["kind"], "ExternalSecret");
    let cr = crd("config.example.com", "AppConfig", "appconfigs");
    let r = render(
        &e,
        &cr,
        &data(&[("host", "db")]),
        &no_sources(),
        (&syncret_template::Delims::default()).into(),
        None,
    )
    .unwrap();
    assert_eq!(r.object["apiVersion"], "config.example.com/v1");
    assert_eq!(r.object["spec"], json!({"data": {"host": "db"}}));
    assert!(r.object.get("data").is_none());
}

#[test]
fn esos_content_hash_is_sha3_of_gos_formatting() {
    // Computed with Go: fmt.Sprintf("%+v", m) of the same unstructured map (ints as int64, floats as float64),
    // `map[a:<nil> b:map[x:[1 2 a] y:two words] c:true d: e:map[] f:2.5 g:1e+21 h:1e-05 i:1.23456789e+08]`.
    let spec: Value = serde_json::from_str(
        r#"{"b":{"y":"two words","x":[1,2,"a"]},"a":null,"c":true,"d":"","e":{},"f":2.5,"g":1e21,"h":0.00001,"i":123456789.0}"#,
    )
    .unwrap();
    let mut text = String::new();
    go_format(&mut text, &spec, 0);
    assert_eq!(
        text,
        "map[a:<nil> b:map[x:[1 2 a] y:two words] c:true d: e:map[] f:2.5 g:1e+21 h:1e-05 i:1.23456789e+08]"
    );
    assert_eq!(
        content_hash(&json!({"spec": spec, "data": {"ignored": "x"}})).unwrap(),
        "de15363bb51be204bcf76afb6f003096cd330ffba1ff60e43db28e54"
    );
    assert_eq!(content_hash(&json!({"spec": null, "metadata": {}})), None);
}

#[test]
fn literal_documents_go_to_paths_merging_into_maps_already_there() {
    // ESO's TestApplyTemplateToManifest_MergeBehavior: the existing spec.slack keeps its keys.
    let e = es(r#"
metadata: {name: slack, namespace: team}
spec:
  target:
    name: test-slack-config
    creationPolicy: Merge
    manifest: {apiVersion: notification.toolkit.fluxcd.io/v1beta1, kind: Provider}
    template:
      templateFrom:
      - literal: "api_url: {{ .url }}"
        target: spec.slack
"#);
    let k = crd("notification.toolkit.fluxcd.io", "Provider", "providers");
    let existing = json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1beta1", "kind": "Provider",
        "metadata": {"name": "test-slack-config", "namespace": "team", "uid": "u1",
                     "managedFields": [{"manager": "kubectl"}]},
        "spec": {"type": "slack", "slack": {"channel": "general", "username": "bot"}},
    });
    let url = data(&[("url", "https://hooks.example/XXX")]);
    let r = render(
        &e,
        &k,
        &url,
        &no_sources(),
        (&syncret_template::Delims::default()).into(),
        Some(&existing),
    )
    .unwrap();
    // What we apply: only our field.
    assert_eq!(
        r.object["spec"],
        json!({"slack": {"api_url": "https://hooks.example/XXX"}})
    );
    // The hash is of the object as it will be.
    let merged = json!({"spec": {"type": "slack", "slack": {"channel": "general", "username": "bot",
                                                            "api_url": "https://hooks.example/XXX"}}});
    assert_eq!(r.hash, content_hash(&merged).unwrap());
    // Merge into an object nobody manages is what Merge is for.
    assert!(matches!(
        plan(&e, &k, r, Some(&existing)),
        Ok(ObjectWrite::Apply { create: false, .. })
    ));
}

#[test]
fn a_one_key_path_is_replaced_and_yaml_numbers_stay_numbers() {
    // ESO's TestApplyTemplateToManifest_LiteralWithDeployment.
    let e = es(r#"
metadata: {name: web, namespace: team}
spec:
  target:
    manifest: {apiVersion: apps/v1, kind: Deployment}
    template:
      templateFrom:
      - target: spec
        literal: |
          replicas: {{ .replicas }}
          template:
            spec:
              containers:
              - name: nginx
                image: nginx:{{ .version }}
"#);
    let k = crd("apps", "Deployment", "deployments");
    let r = render(
        &e,
        &k,
        &data(&[("replicas", "3"), ("version", "1.21")]),
        &no_sources(),
        (&syncret_template::Delims::default()).into(),
        None,
    )
    .unwrap();
    assert_eq!(r.object["spec"]["replicas"], json!(3));
    assert_eq!(
        r.object["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.21"
    );
}

#[test]
fn template_data_and_configmap_items_go_to_data_rendered_twice_as_eso_does() {
    let e = es(r#"
metadata: {name: app, namespace: team}
spec:
  target:
    manifest: {apiVersion: config.example.com/v1, kind: AppConfig}
    template:
      metadata:
        labels: {app: "{{ .not_rendered }}"}
      templateFrom:
      - configMap:
          name: tpl
          items:
          - {key: twice}
          - {key: pairs, templateAs: KeysAndValues}
      - configMap:
          name: tpl
          items: [{key: at-path}]
        target: spec.rules[1].value
      - literal: "lbl: x"
        target: Labels
      data:
        url: "https://{{ .host }}"
"#);
    let mut sources = TemplateSources::default();
    sources.config_maps.insert(
        "tpl".into(),
        [
            // Renders to `{{ .host }}`, which ESO renders again.
            ("twice".to_string(), r#"{{ "{{ .host }}" }}"#.to_string()),
            ("pairs".to_string(), "k1: '{{ .host }}'\nk2: v2".to_string()),
            ("at-path".to_string(), "{{ .port }}".to_string()),
        ]
        .into(),
    );
    let k = crd("config.example.com", "AppConfig", "appconfigs");
    let r = render(
        &e,
        &k,
        &data(&[("host", "db"), ("port", "5432")]),
        &sources,
        (&syncret_template::Delims::default()).into(),
        None,
    )
    .unwrap();
    assert_eq!(
        r.object["data"],
        json!({"twice": "db", "k1": "db", "k2": "v2", "url": "https://db"})
    );
    assert_eq!(r.object["spec"]["rules"], json!([null, {"value": 5432}]));
    // Template metadata is copied as it is (ESO does not render it for generic targets).
    assert_eq!(r.object["metadata"]["labels"]["app"], "{{ .not_rendered }}");
    assert_eq!(r.object["metadata"]["labels"]["lbl"], "x");
    // spec exists (the skeleton's), so ESO hashes spec.
    assert_eq!(r.hash, content_hash(&json!({"spec": r.object["spec"]})).unwrap());
}

#[test]
fn errors_name_the_field_and_never_a_value() {
    let k = crd("config.example.com", "AppConfig", "appconfigs");
    let missing = es(r#"
metadata: {name: app, namespace: team}
spec:
  target:
    manifest: {apiVersion: config.example.com/v1, kind: AppConfig}
    template:
      templateFrom:
      - configMap: {name: nope, items: [{key: a}]}
"#);
    let e = render(
        &missing,
        &k,
        &data(&[]),
        &no_sources(),
        (&syncret_template::Delims::default()).into(),
        None,
    )
    .unwrap_err();
    assert_eq!(e.field, "spec.target.template.templateFrom[0].configMap.name");
    let bad = es(r#"
metadata: {name: app, namespace: team}
spec:
  target:
    manifest: {apiVersion: config.example.com/v1, kind: AppConfig}
    template:
      templateFrom:
      - literal: "password: {{ .password }}"
        target: spec.a..b
"#);
    let e = render(
        &bad,
        &k,
        &data(&[("password", "s3cr3t")]),
        &no_sources(),
        (&syncret_template::Delims::default()).into(),
        None,
    )
    .unwrap_err();
    assert!(
        e.field.starts_with("spec.target.template.templateFrom[0].literal"),
        "{e}"
    );
    assert!(e.message.contains("empty segment"), "{e}");
    assert!(!e.to_string().contains("s3cr3t"));
    // A string where the path needs a map.
    let clash = es(r#"
metadata: {name: app, namespace: team}
spec:
  target:
    manifest: {apiVersion: config.example.com/v1, kind: AppConfig}
    template:
      templateFrom:
      - {literal: "x", target: spec.a}
      - {literal: "k: v", target: spec.a.b}
"#);
    let e = render(
        &clash,
        &k,
        &data(&[]),
        &no_sources(),
        (&syncret_template::Delims::default()).into(),
        None,
    )
    .unwrap_err();
    assert!(e.message.contains("expected map at key \"b\" but found string"), "{e}");
}

#[test]
fn paths_as_eso_parses_them() {
    assert_eq!(
        parse_path("spec.rules[0].from[2].source").unwrap(),
        vec![
            Step::Key("spec".into()),
            Step::Key("rules".into()),
            Step::Index(0),
            Step::Key("from".into()),
            Step::Index(2),
            Step::Key("source".into()),
        ]
    );
    assert_eq!(parse_path("a[1][2]").unwrap().len(), 3);
    for (bad, why) in [
        ("", "empty segment"),
        ("a..b", "empty segment"),
        ("[0].a", "must start with a key"),
        ("a[-1]", "negative index"),
        ("a[x]", "bad index"),
        ("a[1", "unterminated"),
        ("a[1]b", "expected '['"),
        ("a[10001]", "exceeds maximum (10000)"),
    ] {
        let e = parse_path(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn hostile_documents_are_bounded() {
    let k = crd("config.example.com", "AppConfig", "appconfigs");
    // Nested 100,000 deep: refused by the YAML reader, no stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let e = es(&format!(
        r#"
metadata: {{name: app, namespace: team}}
spec:
  target:
    manifest: {{apiVersion: config.example.com/v1, kind: AppConfig}}
    template:
      templateFrom:
      - literal: '{deep}'
        target: spec.x.y
"#
    ));
    assert!(
        render(
            &e,
            &k,
            &data(&[]),
            &no_sources(),
            (&syncret_template::Delims::default()).into(),
            None
        )
        .is_err()
    );
    // The largest index grows one array, not a product of them.
    let mut o = json!({});
    set_at(&mut o, &parse_path("spec.a[10000].b[10000]").unwrap(), &mut |_| {
        json!(1)
    })
    .unwrap();
    assert_eq!(o["spec"]["a"].as_array().unwrap().len(), 10_001);
    assert_eq!(o["spec"]["a"][10_000]["b"][10_000], json!(1));
}

fn existing(labels: Value, owners: Value, managers: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "team", "labels": labels, "ownerReferences": owners,
                     "managedFields": managers},
        "data": {"other": "x"},
    })
}

#[test]
fn owner_and_orphan_write_only_what_they_wrote_merge_writes_anywhere() {
    let yaml = |policy: &str, annotations: &str| {
        es(&format!(
            r#"
metadata: {{name: app, namespace: team, uid: u-1{annotations}}}
spec:
  target: {{name: cfg, creationPolicy: {policy}, manifest: {{apiVersion: v1, kind: ConfigMap}}}}
"#
        ))
    };
    let k = configmap();
    let fetched = data(&[("host", "db")]);
    let foreign = existing(json!({}), json!([]), json!([{"manager": "kubectl"}]));
    for policy in ["Owner", "Orphan"] {
        let e = yaml(policy, "");
        let r = render(
            &e,
            &k,
            &fetched,
            &no_sources(),
            (&syncret_template::Delims::default()).into(),
            Some(&foreign),
        )
        .unwrap();
        assert_eq!(
            plan(&e, &k, r, Some(&foreign)).unwrap_err().to_string(),
            "ConfigMap \"cfg\" already exists and is not managed by this ExternalSecret; delete it, or annotate the \
             ExternalSecret with syncret.dev/adopt-existing-secret=true to take it over",
            "{policy}"
        );
        // Told to adopt: written.
        let e = yaml(policy, ", annotations: {syncret.dev/adopt-existing-secret: 'true'}");
        let r = render(
            &e,
            &k,
            &fetched,
            &no_sources(),
            (&syncret_template::Delims::default()).into(),
            Some(&foreign),
        )
        .unwrap();
        assert!(matches!(
            plan(&e, &k, r, Some(&foreign)),
            Ok(ObjectWrite::Apply { create: false, .. })
        ));
        // Ours (our field manager): written.
        let ours = existing(
            json!({}),
            json!([]),
            json!([{"manager": "externalsecrets.external-secrets.io/app"}]),
        );
        let e = yaml(policy, "");
        let r = render(
            &e,
            &k,
            &fetched,
            &no_sources(),
            (&syncret_template::Delims::default()).into(),
            Some(&ours),
        )
        .unwrap();
        assert!(matches!(plan(&e, &k, r, Some(&ours)), Ok(ObjectWrite::Apply { .. })));
    }
    // Controlled by another ExternalSecret: nobody writes.
    let theirs = existing(
        json!({}),
        json!([{"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "name": "other", "uid": "u-2",
                "controller": true}]),
        json!([]),
    );
    for policy in ["Owner", "Merge", "CreateOrMerge"] {
        let e = yaml(policy, "");
        let r = render(
            &e,
            &k,
            &fetched,
            &no_sources(),
            (&syncret_template::Delims::default()).into(),
            Some(&theirs),
        )
        .unwrap();
        assert!(
            matches!(plan(&e, &k, r, Some(&theirs)), Err(OwnershipError::OwnedByOther { .. })),
            "{policy}"
        );
    }
    let merge = yaml("Merge", "");
    let r = render(
        &merge,
        &k,
        &fetched,
        &no_sources(),
        (&syncret_template::Delims::default()).into(),
        Some(&foreign),
    )
    .unwrap();
    assert!(matches!(
        plan(&merge, &k, r.clone(), Some(&foreign)),
        Ok(ObjectWrite::Apply { create: false, .. })
    ));
    assert_eq!(plan(&merge, &k, r, None), Ok(ObjectWrite::Missing));
    let none = yaml("None", "");
    let r = render(
        &none,
        &k,
        &fetched,
        &no_sources(),
        (&syncret_template::Delims::default()).into(),
        None,
    )
    .unwrap();
    assert_eq!(plan(&none, &k, r, None), Ok(ObjectWrite::Skip));
    let owner = yaml("Owner", "");
    let r = render(
        &owner,
        &k,
        &fetched,
        &no_sources(),
        (&syncret_template::Delims::default()).into(),
        None,
    )
    .unwrap();
    assert!(matches!(
        plan(&owner, &k, r, None),
        Ok(ObjectWrite::Apply { create: true, .. })
    ));
}

#[test]
fn an_object_holding_what_we_would_write_is_not_written_again() {
    let e = es(r#"
metadata: {name: app, namespace: team, uid: u-1}
spec:
  target: {name: cfg, creationPolicy: Owner, manifest: {apiVersion: v1, kind: ConfigMap}}
"#);
    let k = configmap();
    let fetched = data(&[("host", "db")]);
    let r = render(
        &e,
        &k,
        &fetched,
        &no_sources(),
        (&syncret_template::Delims::default()).into(),
        None,
    )
    .unwrap();
    // What the apiserver holds after our apply (plus its own metadata).
    let mut there = r.object.clone();
    there["metadata"]["uid"] = json!("cm-uid");
    there["metadata"]["resourceVersion"] = json!("7");
    assert!(is_intact(&e, Some(&there)));
    let again = render(
        &e,
        &k,
        &fetched,
        &no_sources(),
        (&syncret_template::Delims::default()).into(),
        Some(&there),
    )
    .unwrap();
    assert_eq!(again.hash, r.hash);
    assert_eq!(plan(&e, &k, again, Some(&there)), Ok(ObjectWrite::Unchanged));
    // Someone edits the data: not intact, written again.
    there["data"]["host"] = json!("evil");
    assert!(!is_intact(&e, Some(&there)));
    let again = render(
        &e,
        &k,
        &fetched,
        &no_sources(),
        (&syncret_template::Delims::default()).into(),
        Some(&there),
    )
    .unwrap();
    assert!(matches!(
        plan(&e, &k, again, Some(&there)),
        Ok(ObjectWrite::Apply { create: false, .. })
    ));
    assert!(!is_intact(&e, None));
    // A custom resource with both spec and data: ESO's hash covers spec only, a change of data is still written.
    let cr = es(r#"
metadata: {name: app, namespace: team, uid: u-1}
spec:
  target:
    name: settings
    manifest: {apiVersion: config.example.com/v1, kind: AppConfig}
    template:
      templateFrom:
      - {literal: "level: info", target: spec.logging}
      data: {banner: "welcome to {{ .host }}"}
"#);
    let k = crd("config.example.com", "AppConfig", "appconfigs");
    let r = render(
        &cr,
        &k,
        &fetched,
        &no_sources(),
        (&syncret_template::Delims::default()).into(),
        None,
    )
    .unwrap();
    let mut there = r.object.clone();
    there["metadata"]["resourceVersion"] = json!("9");
    let again = render(
        &cr,
        &k,
        &fetched,
        &no_sources(),
        (&syncret_template::Delims::default()).into(),
        Some(&there),
    )
    .unwrap();
    assert_eq!(plan(&cr, &k, again, Some(&there)), Ok(ObjectWrite::Unchanged));
    let moved = data(&[("host", "replica")]);
    let again = render(
        &cr,
        &k,
        &moved,
        &no_sources(),
        (&syncret_template::Delims::default()).into(),
        Some(&there),
    )
    .unwrap();
    assert_eq!(again.hash, content_hash(&there).unwrap(), "spec is the same");
    assert!(matches!(
        plan(&cr, &k, again, Some(&there)),
        Ok(ObjectWrite::Apply { create: false, .. })
    ));
    // Orphan: nothing to check (ESO).
    let orphan = es(r#"
metadata: {name: app, namespace: team}
spec:
  target: {name: cfg, creationPolicy: Orphan, manifest: {apiVersion: v1, kind: ConfigMap}}
"#);
    assert!(is_intact(&orphan, None));
}
