//! The `generators.external-secrets.io/v1alpha1` kinds (ESO v2.9's `apis/generators/v1alpha1`): the generators
//! syncret runs ([`Password`], [`UUID`], [`SSHKey`], [`Fake`], [`ECRAuthorizationToken`], [`STSSessionToken`],
//! [`VaultDynamicSecret`], [`Webhook`], [`MFA`], [`GithubAccessToken`]), [`ClusterGenerator`] (any generator spec
//! at cluster scope) and [`GeneratorState`] (what a generator produced, so it can be cleaned up: ESO's garbage
//! collection of states).
//!
//! Field names, enums, defaults and required fields are ESO's. ESO's other generator kinds are accepted inside a
//! `ClusterGenerator` (their spec is kept as it is written) and in `generatorRef.kind`, and refused when used
//! (`docs/design.md`, "Accepted but not supported").
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::externalsecret::GeneratorKind;
use crate::meta::{DNS1123_SUBDOMAIN, SECRET_KEY};
use crate::provider::aws::AWSAuth;
use crate::provider::vault::VaultProvider;
use crate::provider::webhook::{AuthorizationProtocol, WebhookResult};
use crate::schema::is_default;
use crate::secretstore::SecretStoreRetrySettings;
use crate::validate::{FieldError, field, index};

/// API group of the generators.
pub const GROUP: &str = "generators.external-secrets.io";
/// `apiVersion` of the generators.
pub const API_VERSION: &str = "generators.external-secrets.io/v1alpha1";
/// Label of a [`GeneratorState`] naming (as a hash) the object and generator key that produced it (ESO's).
pub const STATE_OWNER_KEY: &str = "generators.external-secrets.io/owner-key";
/// Finalizer on a [`GeneratorState`]: what it records is cleaned up before it goes (ESO's name).
pub const STATE_FINALIZER: &str = "generatorstate.externalsecrets.io/finalizer";

fn password_length() -> i64 {
    24
}

/// The encoding of a generated password.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PasswordEncoding {
    Base64,
    #[serde(rename = "base64url")]
    Base64Url,
    Base32,
    Hex,
    #[default]
    Raw,
}

fn raw_encoding() -> Option<PasswordEncoding> {
    Some(PasswordEncoding::Raw)
}

/// PasswordSpec controls the behavior of the password generator.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "Password",
    namespaced,
    derive = "PartialEq",
    category = "external-secrets",
    category = "external-secrets-generators",
    label("external-secrets.io/component", "controller"),
    doc = "Password generates a random password based on the configuration parameters in spec. You can specify the length, characterset and other attributes."
)]
#[serde(rename_all = "camelCase")]
pub struct PasswordSpec {
    /// Length of the password to be generated. Defaults to 24
    #[serde(default = "password_length")]
    #[schemars(extend("default" = 24))]
    #[schemars(title = "x-syncret-required")]
    pub length: i64,
    /// Digits specifies the number of digits in the generated password. If omitted it defaults to 25% of the
    /// length of the password
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digits: Option<i64>,
    /// Symbols specifies the number of symbol characters in the generated password. If omitted it defaults to 25%
    /// of the length of the password
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbols: Option<i64>,
    /// SymbolCharacters specifies the special characters that should be used in the generated password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol_characters: Option<String>,
    /// Set NoUpper to disable uppercase characters
    #[serde(default)]
    #[schemars(extend("default" = false))]
    #[schemars(title = "x-syncret-required")]
    pub no_upper: bool,
    /// set AllowRepeat to true to allow repeating characters.
    #[serde(default)]
    #[schemars(extend("default" = false))]
    #[schemars(title = "x-syncret-required")]
    pub allow_repeat: bool,
    /// SecretKeys defines the keys that will be populated with generated passwords. Defaults to "password" when
    /// not set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1))]
    pub secret_keys: Vec<String>,
    /// Encoding specifies the encoding of the generated password: raw (default), base64, base64url, base32 or hex.
    #[serde(default = "raw_encoding", skip_serializing_if = "Option::is_none")]
    pub encoding: Option<PasswordEncoding>,
}

impl Default for PasswordSpec {
    fn default() -> Self {
        Self {
            length: password_length(),
            digits: None,
            symbols: None,
            symbol_characters: None,
            no_upper: false,
            allow_repeat: false,
            secret_keys: Vec::new(),
            encoding: raw_encoding(),
        }
    }
}

/// UUIDSpec controls the behavior of the uuid generator.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "UUID",
    plural = "uuids",
    namespaced,
    derive = "PartialEq",
    category = "external-secrets",
    category = "external-secrets-generators",
    label("external-secrets.io/component", "controller"),
    doc = "UUID generates a random UUID (version 4)."
)]
pub struct UUIDSpec {}

/// The type of a generated SSH key.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SSHKeyType {
    #[default]
    Rsa,
    Ecdsa,
    Ed25519,
}

impl SSHKeyType {
    /// `keyType` as written (`rsa` when empty); `None` for a type syncret does not know.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "" | "rsa" => Some(SSHKeyType::Rsa),
            "ecdsa" => Some(SSHKeyType::Ecdsa),
            "ed25519" => Some(SSHKeyType::Ed25519),
            _ => None,
        }
    }
}

fn rsa_key_type() -> String {
    "rsa".to_string()
}

/// SSHKeySpec controls the behavior of the ssh key generator.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "SSHKey",
    plural = "sshkeys",
    namespaced,
    derive = "PartialEq",
    category = "external-secrets",
    category = "external-secrets-generators",
    label("external-secrets.io/component", "controller"),
    doc = "SSHKey generates SSH key pairs."
)]
#[serde(rename_all = "camelCase")]
pub struct SSHKeySpec {
    /// KeyType specifies the SSH key type (rsa, ecdsa, ed25519). Kept as a string (the schema holds the enum), so
    /// an object stored under an older schema still reads and gets a condition naming the field.
    #[serde(default = "rsa_key_type", skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["rsa", "ecdsa", "ed25519"], "default" = "rsa"))]
    pub key_type: String,
    /// KeySize specifies the key size for RSA keys (default: 2048) and ECDSA keys (default: 256). For RSA keys:
    /// 2048, 3072, 4096. For ECDSA keys: 256, 384, 521. Ignored for ed25519 keys
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 256, max = 8192))]
    pub key_size: Option<i64>,
    /// Comment specifies an optional comment for the SSH key
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
}

impl Default for SSHKeySpec {
    fn default() -> Self {
        Self {
            key_type: rsa_key_type(),
            key_size: None,
            comment: String::new(),
        }
    }
}

/// FakeSpec contains the static data.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "Fake",
    namespaced,
    derive = "PartialEq",
    category = "external-secrets",
    category = "external-secrets-generators",
    label("external-secrets.io/component", "controller"),
    doc = "Fake generator is used for testing. It lets you define a static set of credentials that is always returned."
)]
#[serde(rename_all = "camelCase")]
pub struct FakeSpec {
    /// Used to select the correct ESO controller (think: ingress.ingressClassName). The ESO controller is
    /// instantiated with a specific controller name and filters VDS based on this property
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub controller: String,
    /// Data defines the static data returned by this generator.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
}

/// ECRAuthorizationTokenSpec defines the desired state to generate an AWS ECR authorization token.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "ECRAuthorizationToken",
    plural = "ecrauthorizationtokens",
    namespaced,
    derive = "PartialEq",
    category = "external-secrets",
    category = "external-secrets-generators",
    label("external-secrets.io/component", "controller"),
    doc = "ECRAuthorizationToken uses the GetAuthorizationToken API to retrieve an authorization token. The authorization token is valid for 12 hours."
)]
#[serde(rename_all = "camelCase")]
pub struct ECRAuthorizationTokenSpec {
    /// Region specifies the region to operate in.
    pub region: String,
    /// Auth defines how to authenticate with AWS
    #[serde(default, skip_serializing_if = "is_default")]
    pub auth: AWSAuth,
    /// You can assume a role before making calls to the desired AWS service.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
    /// Scope specifies the ECR service scope. Valid options are private and public.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

/// RequestParameters contains parameters that can be passed to the STS service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct STSRequestParameters {
    /// SessionDuration The duration, in seconds, that the credentials should remain valid (900 to 129,600 for
    /// IAM users, 43,200 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_duration: Option<i32>,
    /// SerialNumber is the identification number of the MFA device that is associated with the IAM user who is
    /// making the GetSessionToken call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// TokenCode is the value provided by the MFA device, if MFA is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_code: Option<String>,
}

/// STSSessionTokenSpec defines the desired state to generate an AWS STS session token.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "STSSessionToken",
    plural = "stssessiontokens",
    namespaced,
    derive = "PartialEq",
    category = "external-secrets",
    category = "external-secrets-generators",
    label("external-secrets.io/component", "controller"),
    doc = "STSSessionToken uses the GetSessionToken API to retrieve an authorization token."
)]
#[serde(rename_all = "camelCase")]
pub struct STSSessionTokenSpec {
    /// Region specifies the region to operate in.
    pub region: String,
    /// Auth defines how to authenticate with AWS
    #[serde(default, skip_serializing_if = "is_default")]
    pub auth: AWSAuth,
    /// You can assume a role before making calls to the desired AWS service.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
    /// RequestParameters contains parameters that can be passed to the STS service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_parameters: Option<STSRequestParameters>,
}

/// Which part of the Vault response a VaultDynamicSecret returns.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum VaultDynamicSecretResultType {
    #[default]
    Data,
    Auth,
    Raw,
}

fn data_result() -> Option<VaultDynamicSecretResultType> {
    Some(VaultDynamicSecretResultType::Data)
}

/// VaultDynamicSecretSpec defines the desired spec of VaultDynamicSecret.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "VaultDynamicSecret",
    namespaced,
    derive = "PartialEq",
    category = "external-secrets",
    category = "external-secrets-generators",
    label("external-secrets.io/component", "controller"),
    doc = "VaultDynamicSecret represents a generator that can create dynamic secrets from HashiCorp Vault."
)]
#[serde(rename_all = "camelCase")]
pub struct VaultDynamicSecretSpec {
    /// Used to select the correct ESO controller (think: ingress.ingressClassName)
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub controller: String,
    /// Vault API method to use (GET/POST/other)
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub method: String,
    /// Parameters to pass to Vault write (for non-GET methods)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_fields")]
    pub parameters: Option<serde_json::Value>,
    /// GetParameters are query-string parameters passed to Vault on GET calls. Each key may map to multiple
    /// values. Ignored for non-GET methods; use Parameters for write bodies.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub get_parameters: BTreeMap<String, Vec<String>>,
    /// Result type defines which data is returned from the generator: the "data" section of the Vault API
    /// response (default), the "auth" section, or the raw response.
    #[serde(default = "data_result", skip_serializing_if = "Option::is_none")]
    pub result_type: Option<VaultDynamicSecretResultType>,
    /// Used to configure http retries if failed
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_settings: Option<SecretStoreRetrySettings>,
    /// Vault provider common spec
    pub provider: VaultProvider,
    /// Vault path to obtain the dynamic secret from
    pub path: String,
    /// Do not fail if no secrets are found. Useful for requests where no data is expected.
    #[serde(default, skip_serializing_if = "is_default")]
    #[schemars(extend("default" = false))]
    pub allow_empty_response: bool,
}

/// A key of a Secret in the generator's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct WebhookSecretKeySelector {
    /// The name of the Secret resource being referred to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub name: String,
    /// The key where the token is found.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY))]
    pub key: String,
}

/// A Secret made available to the webhook's templates under `name`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSecret {
    /// Name of this secret in templates
    pub name: String,
    /// Secret ref to fill in credentials
    pub secret_ref: WebhookSecretKeySelector,
}

/// WebhookSpec controls the behavior of the external generator. Any body parameters should be passed to the
/// server through the parameters field.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "Webhook",
    namespaced,
    derive = "PartialEq",
    category = "external-secrets",
    category = "external-secrets-generators",
    label("external-secrets.io/component", "controller"),
    doc = "Webhook connects to a third party API server to handle the secrets generation configuration parameters in spec."
)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSpec {
    /// Webhook Method
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub method: String,
    /// Webhook url to call
    pub url: String,
    /// Headers
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Auth specifies a authorization protocol. Only one protocol may be set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthorizationProtocol>,
    /// Body
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    /// Timeout, a Go duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Result formatting
    pub result: WebhookResult,
    /// Secrets to fill in templates. These secrets will be passed to the templating function as key value pairs
    /// under the given name
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<WebhookSecret>,
    /// PEM encoded CA bundle used to validate webhook server certificate (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<crate::meta::Base64Data>,
    /// The provider for the CA bundle to use to validate webhook server certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_provider: Option<crate::meta::CAProvider>,
}

/// MFASpec controls the behavior of the mfa generator.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "MFA",
    plural = "mfas",
    namespaced,
    derive = "PartialEq",
    category = "external-secrets",
    category = "external-secrets-generators",
    label("external-secrets.io/component", "controller"),
    doc = "MFA generates a new TOTP token that is compliant with RFC 6238."
)]
#[serde(rename_all = "camelCase")]
pub struct MFASpec {
    /// Secret is a secret selector to a secret containing the seed secret to generate the TOTP value from.
    pub secret: crate::meta::SecretKeySelector,
    /// Length defines the token length. Defaults to 6 characters.
    #[serde(default, skip_serializing_if = "is_default")]
    pub length: i64,
    /// TimePeriod defines how long the token can be active. Defaults to 30 seconds.
    #[serde(default, skip_serializing_if = "is_default")]
    pub time_period: i64,
    /// Algorithm to use for encoding. Defaults to SHA1 as per the RFC.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub algorithm: String,
    /// When defines a time parameter that can be used to pin the origin time of the generated token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Time>,
}

/// A reference to the GitHub App's private key.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GithubSecretRef {
    /// A key of a Secret in the generator's namespace.
    pub secret_ref: crate::meta::SecretKeySelector,
}

/// How syncret authenticates with a GitHub instance.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GithubAuth {
    /// The GitHub App's private key (PEM), which signs the app's JWT.
    pub private_key: GithubSecretRef,
}

/// GithubAccessTokenSpec: an installation access token of a GitHub App.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "GithubAccessToken",
    plural = "githubaccesstokens",
    namespaced,
    derive = "PartialEq",
    category = "external-secrets",
    category = "external-secrets-generators",
    label("external-secrets.io/component", "controller"),
    doc = "GithubAccessToken generates ghs_ accessToken"
)]
#[serde(rename_all = "camelCase")]
pub struct GithubAccessTokenSpec {
    /// URL configures the Github instance URL. Defaults to https://github.com/.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    #[serde(rename = "appID")]
    pub app_id: String,
    #[serde(rename = "installID")]
    pub install_id: String,
    /// List of repositories the token will have access to. If omitted, defaults to all repositories the GitHub
    /// App is installed to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<String>,
    /// Map of permissions the token will have. If omitted, defaults to all permissions the GitHub App has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<BTreeMap<String, String>>,
    /// Auth configures how ESO authenticates with a Github instance.
    pub auth: GithubAuth,
}

/// ClusterGeneratorSpec defines the desired state of a ClusterGenerator.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "ClusterGenerator",
    derive = "PartialEq",
    category = "external-secrets",
    category = "external-secrets-generators",
    label("external-secrets.io/component", "controller"),
    doc = "ClusterGenerator represents a cluster-wide generator which can be referenced as part of `generatorRef` fields."
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterGeneratorSpec {
    /// Kind the kind of this generator.
    pub kind: ClusterGeneratorKind,
    /// Generator the spec for this generator, must match the kind.
    pub generator: GeneratorSpec,
}

/// The kinds a ClusterGenerator may wrap (every generator kind but ClusterGenerator).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ClusterGeneratorKind {
    #[serde(rename = "ACRAccessToken")]
    AcrAccessToken,
    BeyondtrustWorkloadCredentialsDynamicSecret,
    CloudsmithAccessToken,
    #[serde(rename = "ECRAuthorizationToken")]
    EcrAuthorizationToken,
    Fake,
    #[serde(rename = "GCRAccessToken")]
    GcrAccessToken,
    GithubAccessToken,
    GitlabDeployToken,
    QuayAccessToken,
    Password,
    #[serde(rename = "SSHKey")]
    SshKey,
    #[serde(rename = "STSSessionToken")]
    StsSessionToken,
    #[serde(rename = "UUID")]
    Uuid,
    VaultDynamicSecret,
    Webhook,
    Grafana,
    #[serde(rename = "MFA")]
    Mfa,
}

impl ClusterGeneratorKind {
    /// The same kind as a `generatorRef.kind`.
    pub fn generator_kind(self) -> GeneratorKind {
        match self {
            Self::AcrAccessToken => GeneratorKind::AcrAccessToken,
            Self::BeyondtrustWorkloadCredentialsDynamicSecret => {
                GeneratorKind::BeyondtrustWorkloadCredentialsDynamicSecret
            }
            Self::CloudsmithAccessToken => GeneratorKind::CloudsmithAccessToken,
            Self::EcrAuthorizationToken => GeneratorKind::EcrAuthorizationToken,
            Self::Fake => GeneratorKind::Fake,
            Self::GcrAccessToken => GeneratorKind::GcrAccessToken,
            Self::GithubAccessToken => GeneratorKind::GithubAccessToken,
            Self::GitlabDeployToken => GeneratorKind::GitlabDeployToken,
            Self::QuayAccessToken => GeneratorKind::QuayAccessToken,
            Self::Password => GeneratorKind::Password,
            Self::SshKey => GeneratorKind::SshKey,
            Self::StsSessionToken => GeneratorKind::StsSessionToken,
            Self::Uuid => GeneratorKind::Uuid,
            Self::VaultDynamicSecret => GeneratorKind::VaultDynamicSecret,
            Self::Webhook => GeneratorKind::Webhook,
            Self::Grafana => GeneratorKind::Grafana,
            Self::Mfa => GeneratorKind::Mfa,
        }
    }
}

/// GeneratorSpec defines the configuration for various supported generator types. Exactly one field. The specs
/// of the kinds syncret does not run are kept as written.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct GeneratorSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "foreign_spec")]
    pub acr_access_token_spec: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "foreign_spec")]
    pub beyondtrust_workload_credentials_dynamic_secret_spec: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "foreign_spec")]
    pub cloudsmith_access_token_spec: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecr_authorization_token_spec: Option<ECRAuthorizationTokenSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fake_spec: Option<FakeSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "foreign_spec")]
    pub gcr_access_token_spec: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github_access_token_spec: Option<GithubAccessTokenSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "foreign_spec")]
    pub gitlab_deploy_token_spec: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "foreign_spec")]
    pub grafana_spec: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_spec: Option<MFASpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_spec: Option<PasswordSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "foreign_spec")]
    pub quay_access_token_spec: Option<serde_json::Value>,
    #[serde(default, rename = "sshKeySpec", skip_serializing_if = "Option::is_none")]
    pub ssh_key_spec: Option<SSHKeySpec>,
    #[serde(default, rename = "stsSessionTokenSpec", skip_serializing_if = "Option::is_none")]
    pub sts_session_token_spec: Option<STSSessionTokenSpec>,
    #[serde(default, rename = "uuidSpec", skip_serializing_if = "Option::is_none")]
    pub uuid_spec: Option<UUIDSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_dynamic_secret_spec: Option<VaultDynamicSecretSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_spec: Option<WebhookSpec>,
}

/// The spec of a generator kind syncret does not run: an object kept as written.
fn foreign_spec(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true })
}

/// GeneratorStateSpec defines the desired state of a generator state resource.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "GeneratorState",
    namespaced,
    status = "GeneratorStateStatus",
    derive = "PartialEq",
    shortname = "gs",
    category = "external-secrets",
    category = "external-secrets-generators",
    label("external-secrets.io/component", "controller"),
    doc = "GeneratorState represents the state created and managed by a generator resource.",
    printcolumn(
        name = "GC Deadline",
        type_ = "string",
        json_path = ".spec.garbageCollectionDeadline"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorStateSpec {
    /// GarbageCollectionDeadline is the time after which the generator state will be deleted. If it is not set the
    /// generator state is not deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub garbage_collection_deadline: Option<Time>,
    /// Resource is the generator manifest that produced the state (a snapshot, used to clean the state up).
    #[schemars(schema_with = "crate::schema::preserve_unknown_fields")]
    pub resource: serde_json::Value,
    /// State is the state that was produced by the generator implementation.
    #[schemars(schema_with = "crate::schema::preserve_unknown_fields")]
    pub state: serde_json::Value,
}

/// GeneratorStateStatus defines the observed state of a generator state resource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct GeneratorStateStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<GeneratorStateStatusCondition>,
}

/// One condition of a GeneratorState (`Ready`, reason `Created` or `Error`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorStateStatusCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}

/// A generator's spec as syncret runs it, resolved from a namespaced generator or a [`ClusterGenerator`].
#[derive(Clone, Debug, PartialEq)]
pub enum Generator {
    Password(PasswordSpec),
    Uuid,
    SshKey(SSHKeySpec),
    Fake(FakeSpec),
    Ecr(ECRAuthorizationTokenSpec),
    Sts(STSSessionTokenSpec),
    Vault(Box<VaultDynamicSecretSpec>),
    Webhook(WebhookSpec),
    Mfa(MFASpec),
    Github(GithubAccessTokenSpec),
}

impl Generator {
    /// The kind, as `generatorRef.kind` names it.
    pub fn kind(&self) -> GeneratorKind {
        match self {
            Generator::Password(_) => GeneratorKind::Password,
            Generator::Uuid => GeneratorKind::Uuid,
            Generator::SshKey(_) => GeneratorKind::SshKey,
            Generator::Fake(_) => GeneratorKind::Fake,
            Generator::Ecr(_) => GeneratorKind::EcrAuthorizationToken,
            Generator::Sts(_) => GeneratorKind::StsSessionToken,
            Generator::Vault(_) => GeneratorKind::VaultDynamicSecret,
            Generator::Webhook(_) => GeneratorKind::Webhook,
            Generator::Mfa(_) => GeneratorKind::Mfa,
            Generator::Github(_) => GeneratorKind::GithubAccessToken,
        }
    }

    /// Spec problems the schema cannot express, with field paths under `base` (`spec` of a generator,
    /// `spec.generator.passwordSpec` of a ClusterGenerator).
    pub fn validate(&self, base: &str) -> Vec<FieldError> {
        let mut errs = GenErrors::default();
        match self {
            Generator::Password(p) => {
                if p.length <= 0 {
                    errs.push(field(base, "length"), "must be greater than 0");
                }
                for (name, v) in [("digits", p.digits), ("symbols", p.symbols)] {
                    if v.is_some_and(|n| n < 0) {
                        errs.push(field(base, name), "must not be negative");
                    }
                }
                let mut seen = std::collections::BTreeSet::new();
                for (i, k) in p.secret_keys.iter().enumerate() {
                    if k.is_empty() || !seen.insert(k.as_str()) {
                        errs.push(
                            index(&field(base, "secretKeys"), i),
                            "secretKeys must be non-empty and unique",
                        );
                    }
                }
            }
            Generator::SshKey(s) => match (SSHKeyType::parse(&s.key_type), s.key_size) {
                (None, _) => errs.push(
                    field(base, "keyType"),
                    format!("unsupported key type {:?} (rsa, ecdsa or ed25519)", s.key_type),
                ),
                (Some(SSHKeyType::Rsa), Some(bits)) if !(2048..=8192).contains(&bits) => {
                    errs.push(field(base, "keySize"), "RSA keys are 2048 to 8192 bits")
                }
                (Some(SSHKeyType::Ecdsa), Some(bits)) if ![256, 384, 521].contains(&bits) => {
                    errs.push(field(base, "keySize"), "ECDSA keys are 256, 384 or 521 bits")
                }
                _ => {}
            },
            Generator::Ecr(e) => {
                if e.region.trim().is_empty() {
                    errs.push(field(base, "region"), "must not be empty");
                }
                if !matches!(e.scope.as_str(), "" | "private" | "public") {
                    errs.push(field(base, "scope"), "must be private or public");
                }
            }
            Generator::Sts(s) => {
                if s.region.trim().is_empty() {
                    errs.push(field(base, "region"), "must not be empty");
                }
                if s.auth.jwt_auth.is_some() {
                    errs.push(
                        field(base, "auth.jwt"),
                        "jwt auth cannot be used for STS Session Token generation",
                    );
                }
            }
            Generator::Vault(v) => {
                if v.path.trim().is_empty() {
                    errs.push(field(base, "path"), "must not be empty");
                }
                if v.provider.server.trim().is_empty() {
                    errs.push(field(base, "provider.server"), "must not be empty");
                }
            }
            Generator::Webhook(w) => {
                if w.url.trim().is_empty() {
                    errs.push(field(base, "url"), "must not be empty");
                }
                if let Some(t) = &w.timeout
                    && let Err(e) = crate::duration::parse(t)
                {
                    errs.push(field(base, "timeout"), e.to_string());
                }
            }
            Generator::Mfa(m) => {
                if m.secret.name.is_empty() {
                    errs.push(field(base, "secret.name"), "must not be empty");
                }
                if m.secret.key.is_empty() {
                    errs.push(field(base, "secret.key"), "must not be empty");
                }
                // ESO uses the defaults for 0 and below; an RFC 4226 code has 6 to 10 digits (a 31-bit value).
                if !(0..=10).contains(&m.length) {
                    errs.push(
                        field(base, "length"),
                        "must be between 1 and 10 digits (0: the default 6)",
                    );
                }
                if !(0..=MAX_TOTP_PERIOD).contains(&m.time_period) {
                    errs.push(
                        field(base, "timePeriod"),
                        format!("must be between 1 and {MAX_TOTP_PERIOD} seconds (0: the default 30)"),
                    );
                }
                if TotpAlgorithm::parse(&m.algorithm).is_none() {
                    errs.push(
                        field(base, "algorithm"),
                        format!(
                            "unsupported algorithm {:?} (sha1, sha256, sha384, sha512 or sha512_256)",
                            m.algorithm
                        ),
                    );
                }
            }
            Generator::Github(g) => {
                if g.app_id.trim().is_empty() {
                    errs.push(field(base, "appID"), "must not be empty");
                }
                if g.install_id.is_empty() || !g.install_id.bytes().all(|b| b.is_ascii_digit()) {
                    errs.push(field(base, "installID"), "must be the installation's numeric ID");
                }
                let key = &g.auth.private_key.secret_ref;
                if key.name.is_empty() {
                    errs.push(field(base, "auth.privateKey.secretRef.name"), "must not be empty");
                }
                if key.key.is_empty() {
                    errs.push(field(base, "auth.privateKey.secretRef.key"), "must not be empty");
                }
                let url = g.url.trim();
                if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
                    errs.push(field(base, "url"), "must be an http(s) URL");
                }
            }
            Generator::Uuid | Generator::Fake(_) => {}
        }
        errs.0
    }

    /// The `spec.controller` class of the kinds that have one (Fake, VaultDynamicSecret); empty otherwise.
    pub fn controller(&self) -> &str {
        match self {
            Generator::Fake(f) => &f.controller,
            Generator::Vault(v) => &v.controller,
            _ => "",
        }
    }
}

/// The longest MFA `timePeriod` accepted (a day; ESO has no bound).
pub const MAX_TOTP_PERIOD: i64 = 86_400;

/// The HMAC of an MFA token (`algorithm`, ESO's names; empty is sha1 as RFC 6238).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TotpAlgorithm {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
    Sha512_256,
}

impl TotpAlgorithm {
    /// `algorithm` as written (case-insensitive); `None` for one ESO does not know.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "" | "sha1" => Self::Sha1,
            "sha256" => Self::Sha256,
            "sha384" => Self::Sha384,
            "sha512" => Self::Sha512,
            "sha512_256" => Self::Sha512_256,
            _ => return None,
        })
    }
}

/// Errors of [`Generator::validate`] (reconcile-time checks; the schema carries no rule for them).
#[derive(Default)]
struct GenErrors(Vec<FieldError>);

impl GenErrors {
    fn push(&mut self, path: String, message: impl Into<String>) {
        self.0.push(FieldError::new(path, message));
    }
}

/// Why a ClusterGenerator cannot be run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClusterGeneratorError {
    /// `spec.kind` names a kind whose spec field is not set.
    #[error("spec.generator: when kind is {kind}, {field} must be set")]
    Missing { kind: &'static str, field: &'static str },
    /// A kind syncret does not run.
    #[error("spec.kind: {0} generators are not supported by syncret")]
    Unsupported(&'static str),
}

impl ClusterGeneratorSpec {
    /// The wrapped generator (ESO's "virtual" namespaced generator) and the field path of its spec.
    pub fn generator(&self) -> Result<(Generator, &'static str), ClusterGeneratorError> {
        let g = &self.generator;
        let missing = |field| ClusterGeneratorError::Missing {
            kind: self.kind.generator_kind().as_str(),
            field,
        };
        let out = match self.kind {
            ClusterGeneratorKind::Password => (
                Generator::Password(g.password_spec.clone().ok_or_else(|| missing("passwordSpec"))?),
                "spec.generator.passwordSpec",
            ),
            ClusterGeneratorKind::Uuid => {
                g.uuid_spec.as_ref().ok_or_else(|| missing("uuidSpec"))?;
                (Generator::Uuid, "spec.generator.uuidSpec")
            }
            ClusterGeneratorKind::SshKey => (
                Generator::SshKey(g.ssh_key_spec.clone().ok_or_else(|| missing("sshKeySpec"))?),
                "spec.generator.sshKeySpec",
            ),
            ClusterGeneratorKind::Fake => (
                Generator::Fake(g.fake_spec.clone().ok_or_else(|| missing("fakeSpec"))?),
                "spec.generator.fakeSpec",
            ),
            ClusterGeneratorKind::EcrAuthorizationToken => (
                Generator::Ecr(
                    g.ecr_authorization_token_spec
                        .clone()
                        .ok_or_else(|| missing("ecrAuthorizationTokenSpec"))?,
                ),
                "spec.generator.ecrAuthorizationTokenSpec",
            ),
            ClusterGeneratorKind::StsSessionToken => (
                Generator::Sts(
                    g.sts_session_token_spec
                        .clone()
                        .ok_or_else(|| missing("stsSessionTokenSpec"))?,
                ),
                "spec.generator.stsSessionTokenSpec",
            ),
            ClusterGeneratorKind::VaultDynamicSecret => (
                Generator::Vault(Box::new(
                    g.vault_dynamic_secret_spec
                        .clone()
                        .ok_or_else(|| missing("vaultDynamicSecretSpec"))?,
                )),
                "spec.generator.vaultDynamicSecretSpec",
            ),
            ClusterGeneratorKind::Webhook => (
                Generator::Webhook(g.webhook_spec.clone().ok_or_else(|| missing("webhookSpec"))?),
                "spec.generator.webhookSpec",
            ),
            ClusterGeneratorKind::Mfa => (
                Generator::Mfa(g.mfa_spec.clone().ok_or_else(|| missing("mfaSpec"))?),
                "spec.generator.mfaSpec",
            ),
            ClusterGeneratorKind::GithubAccessToken => (
                Generator::Github(
                    g.github_access_token_spec
                        .clone()
                        .ok_or_else(|| missing("githubAccessTokenSpec"))?,
                ),
                "spec.generator.githubAccessTokenSpec",
            ),
            other => return Err(ClusterGeneratorError::Unsupported(other.generator_kind().as_str())),
        };
        Ok(out)
    }
}

impl GeneratorKind {
    /// The kind's name as written in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            GeneratorKind::AcrAccessToken => "ACRAccessToken",
            GeneratorKind::BeyondtrustWorkloadCredentialsDynamicSecret => "BeyondtrustWorkloadCredentialsDynamicSecret",
            GeneratorKind::ClusterGenerator => "ClusterGenerator",
            GeneratorKind::CloudsmithAccessToken => "CloudsmithAccessToken",
            GeneratorKind::EcrAuthorizationToken => "ECRAuthorizationToken",
            GeneratorKind::Fake => "Fake",
            GeneratorKind::GcrAccessToken => "GCRAccessToken",
            GeneratorKind::GithubAccessToken => "GithubAccessToken",
            GeneratorKind::GitlabDeployToken => "GitlabDeployToken",
            GeneratorKind::QuayAccessToken => "QuayAccessToken",
            GeneratorKind::Password => "Password",
            GeneratorKind::SshKey => "SSHKey",
            GeneratorKind::StsSessionToken => "STSSessionToken",
            GeneratorKind::Uuid => "UUID",
            GeneratorKind::VaultDynamicSecret => "VaultDynamicSecret",
            GeneratorKind::Webhook => "Webhook",
            GeneratorKind::Grafana => "Grafana",
            GeneratorKind::Mfa => "MFA",
        }
    }

    /// Whether syncret runs generators of this kind (ClusterGenerator: depends on what it wraps).
    pub fn is_supported(self) -> bool {
        matches!(
            self,
            GeneratorKind::ClusterGenerator
                | GeneratorKind::EcrAuthorizationToken
                | GeneratorKind::Fake
                | GeneratorKind::Password
                | GeneratorKind::SshKey
                | GeneratorKind::StsSessionToken
                | GeneratorKind::Uuid
                | GeneratorKind::VaultDynamicSecret
                | GeneratorKind::Webhook
                | GeneratorKind::Mfa
                | GeneratorKind::GithubAccessToken
        )
    }

    /// The resource plural of a namespaced kind syncret runs (`passwords`, …); `None` for the others.
    pub fn plural(self) -> Option<&'static str> {
        Some(match self {
            GeneratorKind::EcrAuthorizationToken => "ecrauthorizationtokens",
            GeneratorKind::Fake => "fakes",
            GeneratorKind::Password => "passwords",
            GeneratorKind::SshKey => "sshkeys",
            GeneratorKind::StsSessionToken => "stssessiontokens",
            GeneratorKind::Uuid => "uuids",
            GeneratorKind::VaultDynamicSecret => "vaultdynamicsecrets",
            GeneratorKind::Webhook => "webhooks",
            GeneratorKind::Mfa => "mfas",
            GeneratorKind::GithubAccessToken => "githubaccesstokens",
            GeneratorKind::ClusterGenerator => "clustergenerators",
            _ => return None,
        })
    }
}

impl std::fmt::Display for GeneratorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses the `spec` of a namespaced generator object of `kind` (JSON as the apiserver returns it).
pub fn namespaced_spec(kind: GeneratorKind, spec: serde_json::Value) -> Result<Generator, serde_json::Error> {
    use serde::de::Error as _;
    Ok(match kind {
        GeneratorKind::Password => Generator::Password(serde_json::from_value(spec)?),
        GeneratorKind::Uuid => Generator::Uuid,
        GeneratorKind::SshKey => Generator::SshKey(serde_json::from_value(spec)?),
        GeneratorKind::Fake => Generator::Fake(serde_json::from_value(spec)?),
        GeneratorKind::EcrAuthorizationToken => Generator::Ecr(serde_json::from_value(spec)?),
        GeneratorKind::StsSessionToken => Generator::Sts(serde_json::from_value(spec)?),
        GeneratorKind::VaultDynamicSecret => Generator::Vault(Box::new(serde_json::from_value(spec)?)),
        GeneratorKind::Webhook => Generator::Webhook(serde_json::from_value(spec)?),
        GeneratorKind::Mfa => Generator::Mfa(serde_json::from_value(spec)?),
        GeneratorKind::GithubAccessToken => Generator::Github(serde_json::from_value(spec)?),
        other => {
            return Err(serde_json::Error::custom(format!(
                "{} is not a namespaced generator syncret runs",
                other.as_str()
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_defaults_like_eso() {
        let p: PasswordSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(p.length, 24);
        assert_eq!(p.encoding, Some(PasswordEncoding::Raw));
        let p: PasswordSpec = serde_json::from_str(r#"{"length":0,"encoding":"base64url"}"#).unwrap();
        let errs = Generator::Password(p).validate("spec");
        assert_eq!(errs[0].path, "spec.length");
    }

    #[test]
    fn cluster_generator_unwraps_its_kind() {
        let c: ClusterGeneratorSpec =
            serde_json::from_str(r#"{"kind":"Password","generator":{"passwordSpec":{"length":8}}}"#).unwrap();
        let (g, base) = c.generator().unwrap();
        assert_eq!(base, "spec.generator.passwordSpec");
        assert!(matches!(g, Generator::Password(p) if p.length == 8));
        let c: ClusterGeneratorSpec =
            serde_json::from_str(r#"{"kind":"UUID","generator":{"passwordSpec":{}}}"#).unwrap();
        assert_eq!(
            c.generator().unwrap_err().to_string(),
            "spec.generator: when kind is UUID, uuidSpec must be set"
        );
        let c: ClusterGeneratorSpec =
            serde_json::from_str(r#"{"kind":"Grafana","generator":{"grafanaSpec":{"url":"x"}}}"#).unwrap();
        assert!(matches!(
            c.generator(),
            Err(ClusterGeneratorError::Unsupported("Grafana"))
        ));
    }

    #[test]
    fn mfa_and_github_specs_name_the_field() {
        let m: MFASpec = serde_json::from_str(r#"{"secret":{"name":"s","key":"k"}}"#).unwrap();
        assert!(Generator::Mfa(m.clone()).validate("spec").is_empty());
        let bad = MFASpec {
            algorithm: "md5".into(),
            length: 11,
            time_period: -1,
            ..m.clone()
        };
        let paths: Vec<String> = Generator::Mfa(bad)
            .validate("spec")
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(paths, ["spec.length", "spec.timePeriod", "spec.algorithm"]);
        assert_eq!(TotpAlgorithm::parse("SHA256"), Some(TotpAlgorithm::Sha256));
        let g: GithubAccessTokenSpec = serde_json::from_str(
            r#"{"appID":"1","installID":"../x","auth":{"privateKey":{"secretRef":{"name":"k","key":"pem"}}}}"#,
        )
        .unwrap();
        let errs = Generator::Github(g).validate("spec.generator.githubAccessTokenSpec");
        assert_eq!(errs[0].path, "spec.generator.githubAccessTokenSpec.installID");
        let c: ClusterGeneratorSpec = serde_json::from_str(
            r#"{"kind":"MFA","generator":{"mfaSpec":{"secret":{"name":"s","key":"k"},"length":8}}}"#,
        )
        .unwrap();
        let (g, base) = c.generator().unwrap();
        assert_eq!(base, "spec.generator.mfaSpec");
        assert!(matches!(g, Generator::Mfa(m) if m.length == 8));
        assert_eq!(
            namespaced_spec(
                GeneratorKind::Mfa,
                serde_json::json!({"secret": {"name": "s", "key": "k"}})
            )
            .unwrap()
            .kind(),
            GeneratorKind::Mfa
        );
    }

    #[test]
    fn sshkey_kinds_and_sizes() {
        let s: SSHKeySpec = serde_json::from_str(r#"{"keyType":"rsa","keySize":1024}"#).unwrap();
        assert_eq!(Generator::SshKey(s).validate("spec")[0].path, "spec.keySize");
        let s: SSHKeySpec = serde_json::from_str(r#"{"keyType":"dsa"}"#).unwrap();
        let errs = Generator::SshKey(s).validate("spec");
        assert_eq!(errs[0].path, "spec.keyType");
        assert_eq!(SSHKeySpec::default().key_type, "rsa");
    }
}
