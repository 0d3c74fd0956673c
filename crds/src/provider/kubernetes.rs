//! `spec.provider.kubernetes`: Secrets of a (possibly remote) Kubernetes cluster.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{Base64Data, CAProvider, DNS1123_LABEL, SecretKeySelector, ServiceAccountSelector};
use crate::rules::Rule;
use crate::validate::{Errors, field};

/// Configures a store to sync secrets from a Kubernetes cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesProvider {
    /// The API server to connect to; see [`KubernetesProvider::server`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<KubernetesServer>,
    /// How to authenticate with the API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<KubernetesAuth>,
    /// A Secret key holding a kubeconfig with the connection and auth settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_ref: Option<SecretKeySelector>,
    /// Namespace the secrets are read from.
    #[serde(default = "default_namespace")]
    #[schemars(length(min = 1, max = 63), pattern(DNS1123_LABEL))]
    pub remote_namespace: String,
}

fn default_namespace() -> String {
    "default".to_owned()
}

fn default_url() -> String {
    "kubernetes.default".to_owned()
}

/// How to reach the API server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesServer {
    /// Address of the API server.
    #[serde(default = "default_url")]
    pub url: String,
    /// PEM CA bundle (base64) of the API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<Base64Data>,
    /// Where to read the CA bundle from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_provider: Option<CAProvider>,
}

impl Default for KubernetesServer {
    fn default() -> Self {
        Self {
            url: default_url(),
            ca_bundle: None,
            ca_provider: None,
        }
    }
}

/// How to authenticate with the API server: exactly one of `cert`, `token` or `serviceAccount`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct KubernetesAuth {
    /// A client certificate and key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<CertAuth>,
    /// A static bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenAuth>,
    /// A token minted for this ServiceAccount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<ServiceAccountSelector>,
}

/// A client certificate and key in Secrets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertAuth {
    pub client_cert: SecretKeySelector,
    pub client_key: SecretKeySelector,
}

/// A bearer token in a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenAuth {
    pub bearer_token: SecretKeySelector,
}

impl KubernetesProvider {
    /// The server settings, `url: kubernetes.default` when unset.
    pub fn server(&self) -> std::borrow::Cow<'_, KubernetesServer> {
        match &self.server {
            Some(server) => std::borrow::Cow::Borrowed(server),
            None => std::borrow::Cow::Owned(KubernetesServer::default()),
        }
    }

    pub(crate) fn validate_into(&self, path: &str, errs: &mut Errors) {
        let Some(auth) = &self.auth else { return };
        let p = field(path, "auth");
        let n = [
            auth.cert.is_some(),
            auth.token.is_some(),
            auth.service_account.is_some(),
        ]
        .into_iter()
        .filter(|x| *x)
        .count();
        if n != 1 {
            errs.push(
                Rule::KubernetesAuthExactlyOne,
                &p,
                "exactly one of cert, token or serviceAccount must be set",
            );
        }
        if let Some(cert) = &auth.cert {
            for (name, sel) in [("clientCert", &cert.client_cert), ("clientKey", &cert.client_key)] {
                check_named_key(errs, &field(&field(&p, "cert"), name), sel);
            }
        }
        if let Some(token) = &auth.token {
            check_named_key(errs, &field(&p, "token.bearerToken"), &token.bearer_token);
        }
    }
}

fn check_named_key(errs: &mut Errors, path: &str, sel: &SecretKeySelector) {
    if sel.name.is_empty() {
        errs.push(Rule::KubernetesSelectorName, field(path, "name"), "must not be empty");
    }
    if sel.key.is_empty() {
        errs.push(Rule::KubernetesSelectorKey, field(path, "key"), "must not be empty");
    }
}
