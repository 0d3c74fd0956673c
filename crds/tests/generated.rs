//! The committed `deploy/crds/*.yaml` must be exactly what the types generate.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns
use std::path::PathBuf;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use syncret_crds::generate;

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds")
}

#[test]
fn committed_crd_yaml_matches_the_types() {
    let drift = generate::check_dir(&deploy_dir()).expect("read deploy/crds");
    assert!(
        drift.is_empty(),
        "deploy/crds is out of date with the Rust types; run `cargo run -p syncret -- crds --dir deploy/crds` \
         and commit the result:\n  {}",
        drift.join("\n  ")
    );
}

#[test]
fn multi_document_output_is_eighteen_crds() {
    let yaml = generate::multi_document().unwrap();
    let crds: Vec<CustomResourceDefinition> = serde_yaml::Deserializer::from_str(&yaml)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .collect();
    let names: Vec<&str> = crds.iter().map(|c| c.metadata.name.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "externalsecrets.external-secrets.io",
            "clusterexternalsecrets.external-secrets.io",
            "secretstores.external-secrets.io",
            "clustersecretstores.external-secrets.io",
            "pushsecrets.external-secrets.io",
            "clusterpushsecrets.external-secrets.io",
            "passwords.generators.external-secrets.io",
            "uuids.generators.external-secrets.io",
            "sshkeys.generators.external-secrets.io",
            "fakes.generators.external-secrets.io",
            "ecrauthorizationtokens.generators.external-secrets.io",
            "stssessiontokens.generators.external-secrets.io",
            "vaultdynamicsecrets.generators.external-secrets.io",
            "webhooks.generators.external-secrets.io",
            "mfas.generators.external-secrets.io",
            "githubaccesstokens.generators.external-secrets.io",
            "clustergenerators.generators.external-secrets.io",
            "generatorstates.generators.external-secrets.io",
        ]
    );
    // Rendering twice gives the same bytes.
    assert_eq!(yaml, generate::multi_document().unwrap());
}

#[test]
fn write_then_check_is_clean() {
    let dir = std::env::temp_dir().join(format!("syncret-crds-{}", std::process::id()));
    let written = generate::write_dir(&dir).unwrap();
    assert_eq!(written.len(), 18);
    assert!(generate::check_dir(&dir).unwrap().is_empty());
    std::fs::write(dir.join("secretstores.external-secrets.io.yaml"), "stale").unwrap();
    std::fs::write(dir.join("old.external-secrets.io.yaml"), "stale").unwrap();
    let drift = generate::check_dir(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(drift.len(), 2, "{drift:?}");
    assert!(
        drift
            .iter()
            .any(|d| d.contains("secretstores.external-secrets.io.yaml differs"))
    );
    assert!(
        drift
            .iter()
            .any(|d| d.contains("old.external-secrets.io.yaml is not generated"))
    );
}

#[test]
fn committed_admission_policies_match_the_rules() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    for file in [
        "deploy/admission/validating-admission-policies.yaml",
        "deploy/charts/syncret/files/validating-admission-policies.yaml",
    ] {
        let drift = syncret_crds::admission::check(&root.join(file)).expect("read the policy file");
        assert!(
            drift.is_none(),
            "{file} is out of date with crds/src/rules.rs; run `cargo run -p syncret -- crds --dir deploy/crds \
             --dir deploy/charts/syncret/crds --policy deploy/admission/validating-admission-policies.yaml \
             --policy deploy/charts/syncret/files/validating-admission-policies.yaml`: {drift:?}"
        );
    }
}

#[test]
fn policy_check_reports_drift() {
    let path = std::env::temp_dir().join(format!("syncret-policy-{}.yaml", std::process::id()));
    syncret_crds::admission::write(&path).unwrap();
    assert_eq!(syncret_crds::admission::check(&path).unwrap(), None);
    std::fs::write(&path, "stale").unwrap();
    let drift = syncret_crds::admission::check(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(drift.is_some_and(|d| d.contains("differs")));
}
