//! ECRAuthorizationToken and STSSessionToken: the AWS provider's credential chain (`auth.secretRef`, `auth.jwt`,
//! `role`) with the generator's region, then one SDK call (`ecr:GetAuthorizationToken`,
//! `ecr-public:GetAuthorizationToken` or `sts:GetSessionToken`), with ESO's output keys.
use std::sync::Arc;

use async_trait::async_trait;
use aws_config::identity::IdentityCache;
use base64::Engine as _;
use syncret_crds::externalsecret::GeneratorKind;
use syncret_crds::generator::{ECRAuthorizationTokenSpec, STSSessionTokenSpec};
use syncret_crds::provider::aws::{AWSAuth, AWSProvider, AWSServiceType};

use super::{Generated, GeneratorClient, GeneratorInfo};
use crate::aws::Aws;
use crate::aws::errors::from_sdk;
use crate::client::{CallObserver, observed};
use crate::error::{ProviderError, Result};
use crate::registry::ProviderContext;
use crate::value::SecretValue;

/// The store spec the AWS provider's chain reads (`auth`, `role`, `region`).
fn aws_store(
    info: &GeneratorInfo,
    auth: &AWSAuth,
    role: &str,
    region: &str,
) -> (AWSProvider, syncret_crds::secretstore::SecretStoreSpec) {
    let provider = AWSProvider {
        service: AWSServiceType::SecretsManager,
        auth: Some(auth.clone()).filter(|a| a.secret_ref.is_some() || a.jwt_auth.is_some()),
        role: role.to_string(),
        region: region.to_string(),
        additional_roles: Vec::new(),
        external_id: String::new(),
        session_tags: Vec::new(),
        secrets_manager: None,
        transitive_tag_keys: Vec::new(),
        session_tags_policy: Default::default(),
        custom_session_tags: Default::default(),
        prefix: String::new(),
    };
    let _ = info;
    let spec = super::store_spec(syncret_crds::provider::SecretStoreProvider {
        aws: Some(provider.clone()),
        ..Default::default()
    });
    (provider, spec)
}

/// `sts:GetSessionToken`.
pub(super) async fn sts(
    aws: &Aws,
    spec: &STSSessionTokenSpec,
    info: &GeneratorInfo,
    ctx: &ProviderContext,
) -> Result<Arc<dyn GeneratorClient>> {
    let (provider, store_spec) = aws_store(info, &spec.auth, &spec.role, &spec.region);
    let store = info.as_store(store_spec);
    let (base, creds) = aws.generator_chain(&provider, info.base, &store, ctx).await?;
    let mut b = aws_sdk_sts::config::Builder::from(&base)
        .credentials_provider(creds)
        .identity_cache(IdentityCache::no_cache());
    if let Some(url) = &aws.endpoints().sts {
        b = b.endpoint_url(url);
    }
    Ok(Arc::new(Sts {
        client: aws_sdk_sts::Client::from_conf(b.build()),
        params: spec.request_parameters.clone().unwrap_or_default(),
        observer: ctx.observer.clone(),
    }))
}

struct Sts {
    client: aws_sdk_sts::Client,
    params: syncret_crds::generator::STSRequestParameters,
    observer: Arc<dyn CallObserver>,
}

#[async_trait]
impl GeneratorClient for Sts {
    fn kind(&self) -> GeneratorKind {
        GeneratorKind::StsSessionToken
    }

    async fn generate(&self) -> Result<Generated> {
        let out = observed(&self.observer, "AWS/STS", "GetSessionToken", async {
            self.client
                .get_session_token()
                .set_duration_seconds(self.params.session_duration)
                .set_serial_number(self.params.serial_number.clone())
                .set_token_code(self.params.token_code.clone())
                .send()
                .await
                .map_err(|e| from_sdk(e, "GetSessionToken", "sts", None))
        })
        .await?;
        let c = out
            .credentials
            .ok_or_else(|| ProviderError::Transport("GetSessionToken: no credentials found".into()))?;
        Ok(Generated {
            data: [
                ("access_key_id".to_string(), SecretValue::from(c.access_key_id)),
                (
                    "expiration".to_string(),
                    SecretValue::from(c.expiration.secs().to_string()),
                ),
                ("secret_access_key".to_string(), SecretValue::from(c.secret_access_key)),
                ("session_token".to_string(), SecretValue::from(c.session_token)),
            ]
            .into(),
            lease: None,
        })
    }
}

/// ECR (private, the default) or ECR Public (`scope: public`) `GetAuthorizationToken`.
#[cfg(feature = "ecr")]
pub(super) async fn ecr(
    aws: &Aws,
    spec: &ECRAuthorizationTokenSpec,
    info: &GeneratorInfo,
    ctx: &ProviderContext,
) -> Result<Arc<dyn GeneratorClient>> {
    let (provider, store_spec) = aws_store(info, &spec.auth, &spec.role, &spec.region);
    let store = info.as_store(store_spec);
    let (base, creds) = aws.generator_chain(&provider, info.base, &store, ctx).await?;
    let client = if spec.scope == "public" {
        let mut b = aws_sdk_ecrpublic::config::Builder::from(&base)
            .credentials_provider(creds)
            .identity_cache(IdentityCache::no_cache());
        if let Some(url) = &aws.endpoints().ecr_public {
            b = b.endpoint_url(url);
        }
        EcrClient::Public(aws_sdk_ecrpublic::Client::from_conf(b.build()))
    } else {
        let mut b = aws_sdk_ecr::config::Builder::from(&base)
            .credentials_provider(creds)
            .identity_cache(IdentityCache::no_cache());
        if let Some(url) = &aws.endpoints().ecr {
            b = b.endpoint_url(url);
        }
        EcrClient::Private(aws_sdk_ecr::Client::from_conf(b.build()))
    };
    Ok(Arc::new(Ecr {
        client,
        observer: ctx.observer.clone(),
    }))
}

#[cfg(feature = "ecr")]
enum EcrClient {
    Private(aws_sdk_ecr::Client),
    Public(aws_sdk_ecrpublic::Client),
}

#[cfg(feature = "ecr")]
struct Ecr {
    client: EcrClient,
    observer: Arc<dyn CallObserver>,
}

/// `user:password` from a base64 authorization token (the value is never shown in errors).
pub(crate) fn split_token(token: &str) -> Result<(String, String)> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| ProviderError::Transport("the authorization token is not base64".into()))?;
    let text = String::from_utf8(decoded)
        .map_err(|_| ProviderError::Transport("the authorization token is not text".into()))?;
    let mut parts = text.split(':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(u), Some(p), None) => Ok((u.to_string(), p.to_string())),
        _ => Err(ProviderError::Transport("unexpected token format".into())),
    }
}

#[cfg(feature = "ecr")]
#[async_trait]
impl GeneratorClient for Ecr {
    fn kind(&self) -> GeneratorKind {
        GeneratorKind::EcrAuthorizationToken
    }

    async fn generate(&self) -> Result<Generated> {
        let mut data = std::collections::BTreeMap::new();
        match &self.client {
            EcrClient::Private(c) => {
                let out = observed(&self.observer, "AWS/ECR", "GetAuthorizationToken", async {
                    c.get_authorization_token()
                        .send()
                        .await
                        .map_err(|e| from_sdk(e, "GetAuthorizationToken", "ecr", None))
                })
                .await?;
                let items = out.authorization_data.unwrap_or_default();
                let [item] = items.as_slice() else {
                    return Err(ProviderError::Transport(format!(
                        "unexpected number of authorization tokens. expected 1, found {}",
                        items.len()
                    )));
                };
                let (user, pass) = split_token(item.authorization_token.as_deref().unwrap_or_default())?;
                data.insert("username".to_string(), SecretValue::from(user));
                data.insert("password".to_string(), SecretValue::from(pass));
                data.insert(
                    "proxy_endpoint".to_string(),
                    SecretValue::from(item.proxy_endpoint.clone().unwrap_or_default()),
                );
                let exp = item.expires_at.map(|t| t.secs()).unwrap_or_default();
                data.insert("expires_at".to_string(), SecretValue::from(exp.to_string()));
            }
            EcrClient::Public(c) => {
                let out = observed(&self.observer, "AWS/ECRPublic", "GetAuthorizationToken", async {
                    c.get_authorization_token()
                        .send()
                        .await
                        .map_err(|e| from_sdk(e, "GetAuthorizationToken", "ecr-public", None))
                })
                .await?;
                let item = out
                    .authorization_data
                    .ok_or_else(|| ProviderError::Transport("no authorization data".into()))?;
                let (user, pass) = split_token(item.authorization_token.as_deref().unwrap_or_default())?;
                data.insert("username".to_string(), SecretValue::from(user));
                data.insert("password".to_string(), SecretValue::from(pass));
                let exp = item.expires_at.map(|t| t.secs()).unwrap_or_default();
                data.insert("expires_at".to_string(), SecretValue::from(exp.to_string()));
            }
        }
        Ok(Generated { data, lease: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_into_user_and_password() {
        let t = base64::engine::general_purpose::STANDARD.encode("AWS:s3cr3t");
        assert_eq!(split_token(&t).unwrap(), ("AWS".into(), "s3cr3t".into()));
        let bad = base64::engine::general_purpose::STANDARD.encode("no-colon-s3cr3t");
        let e = split_token(&bad).unwrap_err().to_string();
        assert!(!e.contains("s3cr3t"), "{e}");
    }
}
