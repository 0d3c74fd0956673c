//! Vault's `auth.iam` (the aws auth method's `iam` login), as ESO and Vault's own `api/auth/aws`:
//!
//! 1. AWS credentials from the store: `auth.iam.jwt.serviceAccountRef` (IRSA: a TokenRequest token exchanged
//!    with `AssumeRoleWithWebIdentity`), else `auth.iam.secretRef` (static keys), else the operator's own default
//!    chain; then `auth.iam.role` assumed with `externalID`. This is the AWS provider's chain
//!    ([`crate::aws::Aws::credentials`]), so it is cached and renewed the same way.
//! 2. A `POST` of `Action=GetCallerIdentity&Version=2011-06-15` to STS is signed (SigV4, service `sts`, the
//!    store's `region`, default `us-east-1`) with those credentials, including the
//!    `X-Vault-AWS-IAM-Server-ID` header when `vaultAwsIamServerID` is set, and not sent.
//! 3. The signed request goes to Vault: `POST auth/<path>/login` (path default `aws`) with `role` (`vaultRole`),
//!    `iam_http_request_method`, and base64 `iam_request_url`, `iam_request_body`, `iam_request_headers`. Vault
//!    forwards it to STS and matches the caller's ARN to the role.
//!
//! The URL signed is Vault's default STS endpoint (`https://sts.amazonaws.com/`, signed for the region, as
//! Vault's client does), or the AWS provider's STS endpoint when one is configured (`AWS_STS_ENDPOINT`, tests);
//! Vault must be configured to forward to the same host (`auth/aws/config/client sts_endpoint`).
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine as _;
use syncret_crds::provider::aws::{AWSAuth, AWSAuthSecretRef, AWSJWTAuth, AWSProvider, AWSServiceType};
use syncret_crds::provider::vault::VaultIamAuth;

use crate::aws::Aws;
use crate::error::{ProviderError, Result};
use crate::registry::{ProviderContext, StoreInfo};

/// ESO's defaults.
const DEFAULT_REGION: &str = "us-east-1";
const DEFAULT_MOUNT: &str = "aws";
/// Where Vault's client sends (and so signs) `GetCallerIdentity` by default.
const DEFAULT_STS_URL: &str = "https://sts.amazonaws.com/";
const BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
const SERVER_ID_HEADER: &str = "X-Vault-AWS-IAM-Server-ID";

/// Everything an `iam` login needs, built once per client.
pub struct IamLogin {
    credentials: SharedCredentialsProvider,
    pub(crate) mount: String,
    pub(crate) role: String,
    region: String,
    url: String,
    server_id: Option<String>,
    field: String,
}

impl std::fmt::Debug for IamLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IamLogin")
            .field("mount", &self.mount)
            .field("role", &self.role)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// `auth.iam` as the AWS provider's spec, so its credential chain can be reused.
fn as_aws_spec(iam: &VaultIamAuth, region: &str) -> AWSProvider {
    AWSProvider {
        service: AWSServiceType::SecretsManager,
        auth: Some(AWSAuth {
            secret_ref: iam.secret_ref.as_ref().map(|r| AWSAuthSecretRef {
                access_key_id: r.access_key_id.clone(),
                secret_access_key: r.secret_access_key.clone(),
                session_token: r.session_token.clone(),
            }),
            // ESO prefers `jwt` when both are set.
            jwt_auth: iam.jwt_auth.as_ref().map(|j| AWSJWTAuth {
                service_account_ref: j.service_account_ref.clone(),
            }),
        })
        .map(|mut a| {
            if a.jwt_auth.is_some() {
                a.secret_ref = None;
            }
            a
        })
        .filter(|a| a.secret_ref.is_some() || a.jwt_auth.is_some()),
        role: iam.aws_iam_role.trim().to_string(),
        region: region.to_string(),
        additional_roles: Vec::new(),
        external_id: iam.external_id.trim().to_string(),
        session_tags: Vec::new(),
        secrets_manager: None,
        transitive_tag_keys: Vec::new(),
        session_tags_policy: Default::default(),
        custom_session_tags: Default::default(),
        prefix: String::new(),
    }
}

impl IamLogin {
    /// Builds the credential chain of `iam` (nothing is called yet).
    pub async fn build(
        iam: &VaultIamAuth,
        field: &str,
        aws: &Aws,
        store: &StoreInfo,
        ctx: &ProviderContext,
    ) -> Result<Self> {
        if iam.role.trim().is_empty() {
            return Err(ProviderError::invalid_config(
                format!("{field}.vaultRole"),
                "must be set",
            ));
        }
        let region = Some(iam.region.trim())
            .filter(|r| !r.is_empty())
            .unwrap_or(DEFAULT_REGION)
            .to_string();
        let credentials = aws.credentials(&as_aws_spec(iam, &region), field, store, ctx).await?;
        Ok(Self {
            credentials,
            mount: Some(iam.path.trim().trim_matches('/'))
                .filter(|p| !p.is_empty())
                .unwrap_or(DEFAULT_MOUNT)
                .to_string(),
            role: iam.role.trim().to_string(),
            region,
            url: aws.sts_endpoint().map_or_else(|| DEFAULT_STS_URL.to_string(), sts_url),
            server_id: Some(iam.vault_aws_iam_server_id.trim().to_string()).filter(|s| !s.is_empty()),
            field: field.to_string(),
        })
    }

    /// The login body: a freshly signed `GetCallerIdentity` with the current credentials.
    pub async fn body(&self) -> Result<serde_json::Value> {
        let creds = self.credentials.provide_credentials().await.map_err(|e| {
            // The chain's own errors (a missing Secret, a refused STS exchange) are in the source.
            match crate::aws::errors::find_source::<ProviderError>(&e) {
                Some(inner) => crate::aws::errors::duplicate(inner),
                None => ProviderError::Auth(format!(
                    "{}: no usable AWS credentials: {}",
                    self.field,
                    crate::aws::errors::error_chain(&e)
                )),
            }
        })?;
        signed_login(
            &self.role,
            &self.url,
            &self.region,
            self.server_id.as_deref(),
            &creds,
            SystemTime::now(),
        )
    }
}

/// An STS endpoint as the URL to sign: with a path (`/`).
fn sts_url(endpoint: &str) -> String {
    let e = endpoint.trim();
    match e.split_once("://") {
        Some((_, rest)) if rest.contains('/') => e.to_string(),
        _ => format!("{}/", e.trim_end_matches('/')),
    }
}

/// The host (and port) of an `http(s)://host[:port]/...` URL.
fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let host = rest.split(['/', '?']).next()?;
    (!host.is_empty()).then_some(host)
}

/// The `iam` login body for `role`: `GetCallerIdentity` at `url`, signed with `creds` for `region` at `now`.
pub fn signed_login(
    role: &str,
    url: &str,
    region: &str,
    server_id: Option<&str>,
    creds: &Credentials,
    now: SystemTime,
) -> Result<serde_json::Value> {
    let host = host_of(url)
        .ok_or_else(|| ProviderError::invalid_config("AWS_STS_ENDPOINT", format!("{url:?} is not an http(s) URL")))?;
    let mut headers: Vec<(String, String)> = vec![
        ("Host".into(), host.to_string()),
        ("Content-Type".into(), CONTENT_TYPE.into()),
    ];
    if let Some(id) = server_id {
        headers.push((SERVER_ID_HEADER.into(), id.to_string()));
    }
    let identity = creds.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| ProviderError::Auth(format!("signing GetCallerIdentity: {e}")))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(BODY.as_bytes()),
    )
    .map_err(|e| ProviderError::Auth(format!("signing GetCallerIdentity: {e}")))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| ProviderError::Auth(format!("signing GetCallerIdentity: {e}")))?
        .into_parts();
    for (name, value) in instructions.headers() {
        headers.push((name.to_string(), value.to_string()));
    }
    // Go's http.Header as JSON: every value a list.
    let header_json: serde_json::Map<String, serde_json::Value> = headers
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::Array(vec![v.into()])))
        .collect();
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    Ok(serde_json::json!({
        "role": role,
        "iam_http_request_method": "POST",
        "iam_request_url": b64(url.as_bytes()),
        "iam_request_body": b64(BODY.as_bytes()),
        "iam_request_headers": b64(serde_json::Value::Object(header_json).to_string().as_bytes()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn decode(v: &serde_json::Value) -> String {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn the_login_carries_a_signed_get_caller_identity() {
        let creds = Credentials::new("ASIAEXAMPLE", "secret", Some("session".into()), None, "test");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let body = signed_login(
            "app",
            DEFAULT_STS_URL,
            "eu-west-1",
            Some("vault.example.com"),
            &creds,
            now,
        )
        .unwrap();
        assert_eq!(body["role"], "app");
        assert_eq!(body["iam_http_request_method"], "POST");
        assert_eq!(decode(&body["iam_request_url"]), "https://sts.amazonaws.com/");
        assert_eq!(decode(&body["iam_request_body"]), BODY);
        let headers: serde_json::Value = serde_json::from_str(&decode(&body["iam_request_headers"])).unwrap();
        let h = |name: &str| {
            headers
                .as_object()
                .unwrap()
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v[0].as_str().unwrap().to_string())
                .unwrap_or_else(|| panic!("no {name} in {headers}"))
        };
        assert_eq!(h("host"), "sts.amazonaws.com");
        assert_eq!(h("x-amz-date"), "20231114T221320Z");
        assert_eq!(h("x-amz-security-token"), "session");
        assert_eq!(h("x-vault-aws-iam-server-id"), "vault.example.com");
        let auth = h("authorization");
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20231114/eu-west-1/sts/aws4_request"),
            "{auth}"
        );
        assert!(
            auth.contains("x-vault-aws-iam-server-id"),
            "the server id is signed: {auth}"
        );
        assert!(!body.to_string().contains("secret\""), "the secret key never travels");
    }

    #[test]
    fn endpoints_become_urls_to_sign() {
        assert_eq!(sts_url("http://127.0.0.1:5000"), "http://127.0.0.1:5000/");
        assert_eq!(sts_url("http://127.0.0.1:5000/"), "http://127.0.0.1:5000/");
        assert_eq!(host_of("http://127.0.0.1:5000/"), Some("127.0.0.1:5000"));
        assert_eq!(host_of("sts.amazonaws.com"), None);
    }

    #[test]
    fn jwt_wins_over_secret_ref_and_nothing_means_the_default_chain() {
        let iam: VaultIamAuth = serde_json::from_str(
            r#"{"vaultRole":"r","role":"arn:aws:iam::1:role/x","externalID":"e",
                "secretRef":{"accessKeyIDSecretRef":{"name":"k","key":"id"}},
                "jwt":{"serviceAccountRef":{"name":"sa"}}}"#,
        )
        .unwrap();
        let spec = as_aws_spec(&iam, "us-east-1");
        let auth = spec.auth.unwrap();
        assert!(auth.jwt_auth.is_some() && auth.secret_ref.is_none());
        assert_eq!(spec.role, "arn:aws:iam::1:role/x");
        assert_eq!(spec.external_id, "e");
        let bare: VaultIamAuth = serde_json::from_str(r#"{"vaultRole":"r"}"#).unwrap();
        assert!(as_aws_spec(&bare, "us-east-1").auth.is_none());
    }
}
