//! `spec.provider.fake`: static key/value pairs, the test backbone.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::rules::Rule;
use crate::validate::{Errors, field, index};

/// Configures a store that returns the static values listed in it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FakeProvider {
    pub data: Vec<FakeProviderData>,
    /// What store validation reports: 0 Ready, 1 Unknown, 2 Error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::integer")]
    pub validation_result: Option<i64>,
}

/// A key, its value and an optional version.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct FakeProviderData {
    pub key: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
}

impl FakeProvider {
    pub(crate) fn validate_into(&self, path: &str, errs: &mut Errors) {
        for (i, item) in self.data.iter().enumerate() {
            let p = index(&field(path, "data"), i);
            if item.key.is_empty() {
                errs.push(Rule::FakeKey, field(&p, "key"), "must not be empty");
            }
            if item.value.is_empty() {
                errs.push(Rule::FakeValue, field(&p, "value"), "must not be empty");
            }
        }
        if let Some(v) = self.validation_result
            && !(0..=2).contains(&v)
        {
            errs.push(
                Rule::FakeValidationResult,
                field(path, "validationResult"),
                "must be 0 (Ready), 1 (Unknown) or 2 (Error)",
            );
        }
    }
}
