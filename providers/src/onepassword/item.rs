//! A 1Password item as a remote value: ESO's rules for `property` and `dataFrom.extract`.
//!
//! - `property` names a field by label (`password` when empty), or `field/<label>` / `file/<name>` explicitly;
//!   for a `DOCUMENT` item a plain property names a file (empty: the first file).
//! - A label must match exactly one field (ESO's "expected one 1Password ItemField").
//! - `extract`: every field (label → value) or, for a document, every file (name → content); with a property,
//!   only that field or file.
use std::collections::BTreeMap;

use crate::error::{ProviderError, Result};
use crate::value::{SecretValue, Select};

/// The category whose plain properties name files.
pub const DOCUMENT: &str = "DOCUMENT";
/// The field read when no property is given.
pub const DEFAULT_FIELD: &str = "password";

/// What a property addresses.
#[derive(Debug, PartialEq, Eq)]
pub enum Target<'a> {
    Field(&'a str),
    File(&'a str),
}

/// ESO's `getObjType`.
pub fn target<'a>(category: &str, property: &'a str) -> Target<'a> {
    if let Some(rest) = property.strip_prefix("field/") {
        return Target::Field(rest);
    }
    if let Some(rest) = property.strip_prefix("file/") {
        return Target::File(rest);
    }
    if category == DOCUMENT {
        Target::File(property)
    } else {
        Target::Field(property)
    }
}

/// A full item: its fields (in order, labels may repeat) and its files' contents.
#[derive(Clone, Debug, Default)]
pub struct Item {
    pub title: String,
    pub category: String,
    pub fields: Vec<(String, SecretValue)>,
    pub files: Vec<(String, SecretValue)>,
}

impl Item {
    fn count(&self, label: &str) -> usize {
        self.fields.iter().filter(|(l, _)| l == label).count()
    }

    fn one_field(&self, key: &str, label: &str) -> Result<SecretValue> {
        match self.count(label) {
            1 => Ok(self
                .fields
                .iter()
                .find(|(l, _)| l == label)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()),
            0 => Err(ProviderError::PropertyNotFound {
                key: key.to_string(),
                property: label.to_string(),
            }),
            n => Err(self.ambiguous(key, label, n)),
        }
    }

    fn ambiguous(&self, key: &str, label: &str, n: usize) -> ProviderError {
        ProviderError::InvalidValue {
            key: key.to_string(),
            message: format!(
                "expected one 1Password ItemField matching '{label}' in '{}', got {n}",
                self.title
            ),
        }
    }

    /// Every field (only `label` when given); a label that repeats is an error, as in ESO.
    pub fn field_map(&self, key: &str, label: Option<&str>) -> Result<BTreeMap<String, SecretValue>> {
        let mut out = BTreeMap::new();
        for (l, v) in &self.fields {
            if label.is_some_and(|want| want != l) {
                continue;
            }
            let n = self.count(l);
            if n != 1 {
                return Err(self.ambiguous(key, l, n));
            }
            out.insert(l.clone(), v.clone());
        }
        Ok(out)
    }
}

impl Select for Item {
    fn select(&self, key: &str, property: Option<&str>) -> Result<SecretValue> {
        match target(&self.category, property.unwrap_or_default()) {
            Target::Field(label) => self.one_field(key, if label.is_empty() { DEFAULT_FIELD } else { label }),
            Target::File(name) => self
                .files
                .iter()
                .find(|(n, _)| name.is_empty() || n == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| ProviderError::PropertyNotFound {
                    key: key.to_string(),
                    property: property.unwrap_or_default().to_string(),
                }),
        }
    }

    fn extract(&self, key: &str, property: Option<&str>) -> Result<BTreeMap<String, SecretValue>> {
        match target(&self.category, property.unwrap_or_default()) {
            Target::Field(label) => self.field_map(key, Some(label).filter(|l| !l.is_empty())),
            Target::File(name) => Ok(self
                .files
                .iter()
                .filter(|(n, _)| name.is_empty() || n == name)
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(category: &str) -> Item {
        let v = |s: &str| SecretValue::from(s);
        Item {
            title: "db".into(),
            category: category.into(),
            fields: vec![
                ("username".into(), v("admin")),
                ("password".into(), v("hunter2")),
                ("dup".into(), v("a")),
                ("dup".into(), v("b")),
                ("tls.crt".into(), v("CERT")),
            ],
            files: vec![("id_rsa".into(), v("KEY")), ("notes.txt".into(), v("NOTES"))],
        }
    }

    fn text(r: Result<SecretValue>) -> String {
        String::from_utf8(r.unwrap().to_vec()).unwrap()
    }

    #[test]
    fn properties_name_fields_and_files_as_eso() {
        let login = item("LOGIN");
        assert_eq!(text(login.select("db", None)), "hunter2");
        assert_eq!(text(login.select("db", Some("username"))), "admin");
        assert_eq!(
            text(login.select("db", Some("tls.crt"))),
            "CERT",
            "a dot is part of the label"
        );
        assert_eq!(text(login.select("db", Some("field/username"))), "admin");
        assert_eq!(text(login.select("db", Some("file/notes.txt"))), "NOTES");
        assert!(matches!(
            login.select("db", Some("missing")),
            Err(ProviderError::PropertyNotFound { .. })
        ));
        let e = login.select("db", Some("dup")).unwrap_err().to_string();
        assert!(
            e.contains("expected one 1Password ItemField matching 'dup' in 'db', got 2"),
            "{e}"
        );
        let doc = item(DOCUMENT);
        assert_eq!(text(doc.select("db", None)), "KEY", "a document's first file");
        assert_eq!(text(doc.select("db", Some("notes.txt"))), "NOTES");
        assert_eq!(text(doc.select("db", Some("field/username"))), "admin");
    }

    #[test]
    fn extract_gives_fields_or_files() {
        let login = item("LOGIN");
        assert!(
            login.extract("db", None).is_err(),
            "a repeated label fails the whole map, as in ESO"
        );
        let m = login.extract("db", Some("username")).unwrap();
        assert_eq!(m.keys().collect::<Vec<_>>(), ["username"]);
        let doc = item(DOCUMENT);
        let files = doc.extract("db", None).unwrap();
        assert_eq!(files.keys().collect::<Vec<_>>(), ["id_rsa", "notes.txt"]);
        assert_eq!(doc.extract("db", Some("id_rsa")).unwrap().len(), 1);
    }
}
