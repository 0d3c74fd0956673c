//! Reference types shared by every provider (`github.com/external-secrets/external-secrets/apis/meta/v1`),
//! plus the name patterns ESO puts on them.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Pattern of a DNS-1123 subdomain (object names such as Secrets, ConfigMaps, stores).
pub const DNS1123_SUBDOMAIN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// Pattern of a DNS-1123 label (namespace names).
pub const DNS1123_LABEL: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// Pattern of a key in a Secret or ConfigMap (and of `data[].secretKey`).
pub const SECRET_KEY: &str = r"^[-._a-zA-Z0-9]+$";

/// A reference to a key in a Secret. `key` is required in some places and defaulted in others.
///
/// `namespace` is only honoured in a ClusterSecretStore; if it is left out there the reference is "referent"
/// and resolves in the namespace of the ExternalSecret that uses the store.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeySelector {
    /// The name of the Secret resource being referred to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub name: String,
    /// The namespace of the Secret resource being referred to. Ignored if the referent is not cluster-scoped,
    /// otherwise defaults to the namespace of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(DNS1123_LABEL))]
    pub namespace: Option<String>,
    /// A key in the referenced Secret. Some instances of this field may be defaulted, in others it may be required.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY))]
    pub key: String,
}

/// A reference to a ServiceAccount; ESO mints tokens for it with the TokenRequest API.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountSelector {
    /// The name of the ServiceAccount resource being referred to.
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub name: String,
    /// Namespace of the resource being referred to. Ignored if the referent is not cluster-scoped, otherwise
    /// defaults to the namespace of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(DNS1123_LABEL))]
    pub namespace: Option<String>,
    /// The `aud` claims of the minted token. With a well-known annotation (IRSA, GCP Workload Identity) these
    /// audiences are appended to the list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
}

/// Where a CA bundle lives: a Secret or a ConfigMap.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum CAProviderType {
    Secret,
    ConfigMap,
}

/// A custom certificate authority for reaching the provider: a PEM certificate in a Secret or ConfigMap.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CAProvider {
    /// The type of provider to use such as "Secret", or "ConfigMap".
    #[serde(rename = "type")]
    pub type_: CAProviderType,
    /// The name of the object located at the provider type.
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub name: String,
    /// The key where the CA certificate can be found in the Secret or ConfigMap.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY))]
    pub key: String,
    /// The namespace the Provider type is in. Can only be defined when used in a ClusterSecretStore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(DNS1123_LABEL))]
    pub namespace: Option<String>,
}

/// Base64 text as stored in a `format: byte` field (`caBundle`). Kept as the text the apiserver accepted, so an
/// object never fails to deserialize; [`Base64Data::decode`] gives the bytes (line breaks are ignored, as in Go).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(transparent)]
pub struct Base64Data(pub String);

impl Base64Data {
    /// Encodes bytes.
    pub fn encode(bytes: &[u8]) -> Self {
        use base64::Engine as _;
        Self(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// Decodes the text (standard alphabet, padded; `\r` and `\n` are skipped like Go's decoder does).
    pub fn decode(&self) -> Result<Vec<u8>, base64::DecodeError> {
        use base64::Engine as _;
        let text: String = self.0.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        base64::engine::general_purpose::STANDARD.decode(text)
    }
}

impl JsonSchema for Base64Data {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Base64Data".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "byte" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_and_line_breaks() {
        let data = Base64Data::encode(b"-----BEGIN CERTIFICATE-----");
        assert_eq!(data.decode().unwrap(), b"-----BEGIN CERTIFICATE-----");
        let wrapped = Base64Data(format!("{}\n{}\r\n", &data.0[..8], &data.0[8..]));
        assert_eq!(wrapped.decode().unwrap(), b"-----BEGIN CERTIFICATE-----");
        assert!(Base64Data("not base64!".into()).decode().is_err());
    }

    #[test]
    fn selectors_omit_empty_fields() {
        let sel: SecretKeySelector = serde_json::from_str(r#"{"name":"creds"}"#).unwrap();
        assert_eq!(serde_json::to_string(&sel).unwrap(), r#"{"name":"creds"}"#);
        let ca: CAProvider = serde_json::from_str(r#"{"type":"ConfigMap","name":"ca"}"#).unwrap();
        assert_eq!(ca.type_, CAProviderType::ConfigMap);
    }
}
