//! The engine as providers see it: [`syncret_providers::TemplateRenderer`] for the webhook provider's URL, headers,
//! body and `jsonPath` (providers cannot depend on this crate, so the operator hands the engine over in the
//! `ProviderContext`).
use std::collections::BTreeMap;
use std::rc::Rc;

use bytes::Bytes;
use syncret_providers::{SecretValue, TemplateData, TemplateRenderer};

use super::{Delims, Template, Value};

/// Go templates with ESO's functions and the default delimiters (ESO's webhook ignores the operator's delimiter
/// flags), over `map[string]map[string]string` data.
pub struct ProviderTemplates;

impl TemplateRenderer for ProviderTemplates {
    fn render(&self, name: &str, template: &str, data: &TemplateData) -> Result<SecretValue, String> {
        let map: BTreeMap<Bytes, Value> = data
            .iter()
            .map(|(k, values)| {
                let inner: BTreeMap<Bytes, Bytes> = values
                    .iter()
                    .map(|(k, v)| (Bytes::copy_from_slice(k.as_bytes()), v.clone().into_bytes()))
                    .collect();
                (Bytes::copy_from_slice(k.as_bytes()), Value::StrMap(Rc::new(inner)))
            })
            .collect();
        Template::parse(name, template, &Delims::default())
            .and_then(|t| t.execute(&Value::new_map(map)))
            .map(SecretValue::from)
            .map_err(|e| e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> TemplateData {
        let mut d = TemplateData::new();
        d.entry("remoteRef".into())
            .or_default()
            .insert("key".into(), SecretValue::from("db"));
        d.entry("auth".into())
            .or_default()
            .insert("password".into(), SecretValue::from("hunter2"));
        d
    }

    #[test]
    fn renders_two_level_data_with_sprig() {
        let out = ProviderTemplates
            .render(
                "headers.Authorization",
                r#"Basic {{ print .remoteRef.key ":" .auth.password | b64enc }}"#,
                &data(),
            )
            .unwrap();
        assert_eq!(out.as_bytes(), b"Basic ZGI6aHVudGVyMg==");
    }

    #[test]
    fn errors_name_the_template_not_the_data() {
        let e = ProviderTemplates
            .render("url", "http://x/{{ .auth.nope }}", &data())
            .unwrap_err();
        assert!(e.starts_with("template: url:1:"), "{e}");
        assert!(e.contains(r#"map has no entry for key "nope""#), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
}
