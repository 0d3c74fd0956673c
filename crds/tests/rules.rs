//! The rule table (`crds/src/rules.rs`) and `validate()` are twins: every rule's invalid sample makes
//! `validate()` report exactly that rule, at the path the table gives, and every rule the apiserver enforces is
//! in the generated policy or CRDs. (That the apiserver refuses the same samples is checked on a real one by
//! `tests/tests/integration/admission.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use std::collections::BTreeSet;

use syncret_crds::admission::{self, KINDS};
use syncret_crds::rules::{Enforced, Rule};
use syncret_crds::{
    ClusterExternalSecret, ClusterPushSecret, ClusterSecretStore, ExternalSecret, FieldError, PushSecret, SecretStore,
    StoreKind, generate,
};

fn validate(yaml: &str) -> (String, Vec<FieldError>) {
    let value: serde_json::Value = serde_yaml::from_str(yaml).unwrap();
    let kind = value["kind"].as_str().unwrap().to_owned();
    let errs = match kind.as_str() {
        "ExternalSecret" => serde_json::from_value::<ExternalSecret>(value).unwrap().spec.validate(),
        "SecretStore" => serde_json::from_value::<SecretStore>(value)
            .unwrap()
            .spec
            .validate_for(StoreKind::SecretStore, Some("sample")),
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
    (kind, errs)
}

/// `spec.data[3].x[a.b]` → `spec.data[*].x[*]`.
fn normalize(path: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '[' => {
                if depth == 0 {
                    out.push_str("[*]");
                }
                depth += 1;
            }
            ']' => depth -= 1,
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[test]
fn every_sample_breaks_its_rule_at_the_tables_path_and_no_other() {
    let mut problems = Vec::new();
    for &rule in Rule::ALL {
        let def = rule.def();
        let (kind, errs) = validate(def.sample);
        let patterns: BTreeSet<String> = admission::roots(&kind, def.owner)
            .into_iter()
            .flat_map(|root| {
                def.scopes
                    .iter()
                    .map(move |s| normalize(&admission::pattern(root, s, def.field)))
            })
            .collect();
        if patterns.is_empty() {
            problems.push(format!(
                "{rule:?}: the sample's kind {kind} does not embed {:?}",
                def.owner
            ));
        }
        let mine: Vec<&FieldError> = errs.iter().filter(|e| e.rule == Some(rule)).collect();
        if mine.is_empty() {
            problems.push(format!(
                "{rule:?}: validate() does not report it on its sample: {errs:?}"
            ));
        }
        for e in &mine {
            if !patterns.contains(&normalize(&e.path)) {
                problems.push(format!(
                    "{rule:?}: validate() names {:?}, the table says {patterns:?}",
                    e.path
                ));
            }
        }
        let others: Vec<&FieldError> = errs.iter().filter(|e| e.rule != Some(rule)).collect();
        if !others.is_empty() {
            problems.push(format!("{rule:?}: the sample also breaks {others:?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_error_of_validate_carries_its_rule() {
    // A sample that breaks many rules at once: every error is tagged.
    let yaml = "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: x}\nspec:\n  refreshInterval: 1d\n  target: {creationPolicy: None, deletionPolicy: Merge, template: {type: bootstrap.kubernetes.io/token}}\n  dataFrom: [{}, {find: {name: {regexp: '('}}}]\n";
    let (_, errs) = validate(yaml);
    assert!(errs.len() >= 5, "{errs:?}");
    assert!(errs.iter().all(|e| e.rule.is_some()), "{errs:?}");
}

#[test]
fn names_are_unique_and_every_kind_is_covered() {
    let names: BTreeSet<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(names.len(), Rule::ALL.len());
    for kind in KINDS {
        let n = admission::validations(&kind).len();
        assert!(n > 0, "{} has no validation", kind.kind);
    }
}

#[test]
fn policy_rules_generate_one_validation_per_root_and_scope() {
    for &rule in Rule::ALL {
        let def = rule.def();
        let expected: usize = KINDS
            .iter()
            .map(|k| k.roots.iter().filter(|r| r.owner == def.owner).count() * def.scopes.len())
            .sum();
        let generated: usize = KINDS
            .iter()
            .map(|k| admission::validations(k).iter().filter(|v| v.rule == rule).count())
            .sum();
        match def.enforced {
            Enforced::Policy { .. } => assert_eq!(generated, expected, "{rule:?}"),
            _ => assert_eq!(generated, 0, "{rule:?}"),
        }
    }
}

#[test]
fn crd_rules_are_in_the_generated_crds() {
    let all: String = generate::render().unwrap().into_iter().map(|(_, y)| y).collect();
    for &rule in Rule::ALL {
        if let Enforced::Crd { message, .. } = rule.def().enforced {
            assert!(all.contains(message), "{rule:?} is not in the CRDs");
        }
    }
}

#[test]
fn messages_name_the_field() {
    for kind in KINDS {
        for v in admission::validations(&kind) {
            assert!(v.message.starts_with("spec"), "{:?}: {}", v.rule, v.message);
            assert!(
                v.message_expression.starts_with("'spec"),
                "{:?}: {}",
                v.rule,
                v.message_expression
            );
            assert!(
                !v.expression.contains('@') || v.expression.contains("'@"),
                "{}",
                v.expression
            );
            assert!(!v.expression.contains('%'), "{}", v.expression);
        }
    }
}
