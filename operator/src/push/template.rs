//! `spec.template` of a PushSecret: the ExternalSecret template engine ([`crate::sync::desired`]) over the source
//! Secret's data. As in ESO (`pushsecret_controller_template.go`), the rendered keys are merged over the source
//! data whatever `mergePolicy` says (the source Secret is never written; only what is pushed changes).
use std::collections::BTreeMap;

use syncret_crds::externalsecret::{
    ExternalSecret, ExternalSecretSpec, ExternalSecretTarget, ExternalSecretTemplate, TemplateMergePolicy,
};

use crate::sync::desired::{self, TemplateSources};
use syncret_template::Delims;

/// The ExternalSecret the shared engine renders: only `target.template` matters, forced to `Merge`.
fn carrier(template: &ExternalSecretTemplate) -> ExternalSecret {
    let mut t = template.clone();
    t.merge_policy = TemplateMergePolicy::Merge;
    ExternalSecret::new(
        "pushsecret",
        ExternalSecretSpec {
            target: ExternalSecretTarget {
                template: Some(t),
                ..Default::default()
            },
            ..Default::default()
        },
    )
}

/// The ConfigMaps and Secrets `templateFrom` reads: (ConfigMaps, Secrets).
pub fn needed(template: Option<&ExternalSecretTemplate>) -> (Vec<String>, Vec<String>) {
    match template {
        Some(t) => TemplateSources::needed(&carrier(t)),
        None => (Vec::new(), Vec::new()),
    }
}

/// The data pushed for one source Secret: `source` itself without a template, else the template's output merged
/// over it. Errors name the field (`spec.template…`) and template key, never a value.
pub fn apply(
    template: Option<&ExternalSecretTemplate>,
    source: BTreeMap<String, Vec<u8>>,
    sources: &TemplateSources,
    delims: &Delims,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let Some(t) = template else { return Ok(source) };
    desired::desired(&carrier(t), source, sources, delims)
        .map(|d| d.data)
        .map_err(|e| e.to_string().replace("spec.target.template", "spec.template"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_over_the_source_and_names_fields() {
        let t: ExternalSecretTemplate = serde_yaml::from_str(
            r#"
data:
  dsn: "postgres://{{ .user }}:{{ .pass }}@db"
  user: "{{ .user | upper }}"
"#,
        )
        .unwrap();
        let src: BTreeMap<String, Vec<u8>> =
            [("user".to_string(), b"u".to_vec()), ("pass".to_string(), b"p".to_vec())].into();
        let out = apply(Some(&t), src.clone(), &TemplateSources::default(), &Delims::default()).unwrap();
        let text: BTreeMap<&str, &str> = out
            .iter()
            .map(|(k, v)| (k.as_str(), std::str::from_utf8(v).unwrap()))
            .collect();
        assert_eq!(
            text,
            [("dsn", "postgres://u:p@db"), ("pass", "p"), ("user", "U")].into()
        );
        assert_eq!(
            apply(None, src.clone(), &TemplateSources::default(), &Delims::default()).unwrap(),
            src
        );
        let bad: ExternalSecretTemplate = serde_yaml::from_str("data: {x: '{{ .missing }}'}").unwrap();
        let e = apply(Some(&bad), src, &TemplateSources::default(), &Delims::default()).unwrap_err();
        assert!(e.starts_with("spec.template.data[x]"), "{e}");
        assert!(!e.contains("postgres"));
    }
}
