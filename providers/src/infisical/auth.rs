//! Infisical machine-identity logins: which method, its credentials, and the login call.
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use syncret_crds::meta::SecretKeySelector;
use syncret_crds::provider::infisical::{InfisicalAuth, InfisicalProvider as Spec};

use super::BASE;
use crate::credentials::Credentials;
use crate::error::{ProviderError, Result};
use crate::registry::StoreInfo;
use crate::rest::Rest;
use crate::value::Unloggable;

/// The largest ServiceAccount token file read.
const MAX_TOKEN_FILE: u64 = 64 << 10;

/// Every Secret reference of the auth block (for the referent check).
pub(super) fn selectors(a: &InfisicalAuth) -> Vec<&SecretKeySelector> {
    let mut out = Vec::new();
    if let Some(x) = &a.universal_auth_credentials {
        out.extend([&x.client_id, &x.client_secret]);
    }
    if let Some(x) = &a.jwt_auth_credentials {
        out.extend([&x.identity_id, &x.jwt]);
    }
    if let Some(x) = &a.ldap_auth_credentials {
        out.extend([&x.identity_id, &x.ldap_username, &x.ldap_password]);
    }
    if let Some(x) = &a.kubernetes_auth_credentials {
        out.push(&x.identity_id);
    }
    if let Some(x) = &a.token_auth_credentials {
        out.push(&x.access_token);
    }
    out
}

/// A resolved login method with its credentials.
pub(super) enum Login {
    Universal {
        client_id: Unloggable<String>,
        client_secret: Unloggable<String>,
    },
    Jwt {
        identity_id: Unloggable<String>,
        jwt: Unloggable<String>,
    },
    /// The operator's own ServiceAccount token, read from `token_path` at each login (it is rotated).
    Kubernetes {
        identity_id: Unloggable<String>,
        token_path: PathBuf,
    },
    Ldap {
        identity_id: Unloggable<String>,
        username: Unloggable<String>,
        password: Unloggable<String>,
    },
    /// A pre-issued access token: no login, no renewal, no revocation.
    Token { token: Unloggable<String> },
}

/// What a login returns.
pub(super) struct Issued {
    pub token: Unloggable<String>,
    /// How long the token is valid; `None` for token auth.
    pub lifetime: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginAnswer {
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: i64,
}

impl Login {
    /// The one method the store sets, with its credentials read; the field of the method names every error.
    pub(super) async fn resolve(
        spec: &Spec,
        store: &StoreInfo,
        creds: &Credentials,
        token_path: &Path,
        policy: &crate::TenantPolicy,
    ) -> Result<(Login, String)> {
        let auth = &spec.auth;
        let methods = auth.methods();
        let method = match methods.as_slice() {
            [one] => *one,
            [] => {
                return Err(ProviderError::invalid_config(
                    format!("{BASE}.auth"),
                    "authentication method not found: set one of the *AuthCredentials",
                ));
            }
            many => {
                return Err(ProviderError::invalid_config(
                    format!("{BASE}.auth"),
                    format!(
                        "exactly one authentication method must be set, found {}",
                        many.join(", ")
                    ),
                ));
            }
        };
        let field = format!("{BASE}.auth.{method}");
        let login = if let Some(x) = &auth.universal_auth_credentials {
            Login::Universal {
                client_id: text(creds, &x.client_id, &field, "clientId").await?,
                client_secret: text(creds, &x.client_secret, &field, "clientSecret").await?,
            }
        } else if let Some(x) = &auth.jwt_auth_credentials {
            Login::Jwt {
                identity_id: text(creds, &x.identity_id, &field, "identityId").await?,
                jwt: text(creds, &x.jwt, &field, "jwt").await?,
            }
        } else if let Some(x) = &auth.ldap_auth_credentials {
            Login::Ldap {
                identity_id: text(creds, &x.identity_id, &field, "identityId").await?,
                username: text(creds, &x.ldap_username, &field, "ldapUsername").await?,
                password: text(creds, &x.ldap_password, &field, "ldapPassword").await?,
            }
        } else if let Some(x) = &auth.token_auth_credentials {
            Login::Token {
                token: text(creds, &x.access_token, &field, "accessToken").await?,
            }
        } else if let Some(x) = &auth.kubernetes_auth_credentials {
            // A namespaced store: only with --allow-namespaced-operator-identity (else use jwtAuthCredentials
            // with a token of the namespace's own).
            policy.operator_identity(
                store,
                &field,
                "the operator's own ServiceAccount token (kubernetesAuthCredentials)",
            )?;
            if !x.service_account_token_path.name.is_empty() {
                let path = text(creds, &x.service_account_token_path, &field, "serviceAccountTokenPath").await?;
                if Path::new(path.as_str()) != token_path {
                    return Err(ProviderError::invalid_config(
                        format!("{field}.serviceAccountTokenPath"),
                        "names a file other than the operator's ServiceAccount token; syncret reads no file a store \
                         names",
                    ));
                }
            }
            Login::Kubernetes {
                identity_id: text(creds, &x.identity_id, &field, "identityId").await?,
                token_path: token_path.to_path_buf(),
            }
        } else {
            return Err(ProviderError::Unsupported(format!(
                "{field}: this Infisical authentication method is not supported by syncret (use universal, JWT, \
                 LDAP, Kubernetes or token auth)"
            )));
        };
        Ok((login, field))
    }

    /// Logs in (or hands out the pre-issued token).
    pub(super) async fn login(&self, rest: &Rest, organization: &str, field: &str) -> Result<Issued> {
        let (path, mut body) = match self {
            Login::Token { token } => {
                return Ok(Issued {
                    token: token.clone(),
                    lifetime: None,
                });
            }
            Login::Universal {
                client_id,
                client_secret,
            } => (
                "universal-auth",
                serde_json::json!({"clientId": client_id.0, "clientSecret": client_secret.0}),
            ),
            Login::Jwt { identity_id, jwt } => (
                "jwt-auth",
                serde_json::json!({"identityId": identity_id.0, "jwt": jwt.0}),
            ),
            Login::Kubernetes {
                identity_id,
                token_path,
            } => {
                let jwt = read_token(token_path, field).await?;
                (
                    "kubernetes-auth",
                    serde_json::json!({"identityId": identity_id.0, "jwt": jwt.0}),
                )
            }
            Login::Ldap {
                identity_id,
                username,
                password,
            } => (
                "ldap-auth",
                serde_json::json!({"identityId": identity_id.0, "username": username.0, "password": password.0}),
            ),
        };
        if !organization.is_empty()
            && let Some(obj) = body.as_object_mut()
        {
            obj.insert("organizationSlug".into(), organization.into());
        }
        let req = rest
            .request(Method::POST, rest.url(&["v1", "auth", path, "login"], &[]))
            .json(&body);
        let call = match self {
            Login::Universal { .. } => "MachineIdentityLoginViaUniversalAuth",
            Login::Jwt { .. } => "MachineIdentityLoginViaJwtAuth",
            Login::Kubernetes { .. } => "MachineIdentityLoginViaKubernetesAuth",
            Login::Ldap { .. } => "MachineIdentityLoginViaLdapAuth",
            Login::Token { .. } => "MachineIdentityLoginViaTokenAuth",
        };
        let resp = rest.send(call, req).await?;
        if !resp.is_success() {
            return Err(match resp.status.as_u16() {
                400 | 401 | 403 | 404 => {
                    ProviderError::Auth(format!("{field}: login refused ({})", resp.describe(call)))
                }
                _ => ProviderError::Transport(resp.describe(call)),
            });
        }
        let answer: LoginAnswer = resp.json(call)?;
        if answer.access_token.is_empty() {
            return Err(ProviderError::Auth(format!(
                "{field}: the login answer has no access token"
            )));
        }
        Ok(Issued {
            token: Unloggable(answer.access_token),
            lifetime: Some(Duration::from_secs(u64::try_from(answer.expires_in).unwrap_or(0))),
        })
    }

    /// Whether the token came from a login (and is revoked when the client is dropped).
    pub(super) fn revocable(&self) -> bool {
        !matches!(self, Login::Token { .. })
    }
}

/// The text at one credential selector; `name` completes the field path for errors.
async fn text(creds: &Credentials, sel: &SecretKeySelector, field: &str, name: &str) -> Result<Unloggable<String>> {
    creds.secret_text(sel, None, &format!("{field}.{name}")).await
}

/// The operator's ServiceAccount token, size-capped.
async fn read_token(path: &Path, field: &str) -> Result<Unloggable<String>> {
    use tokio::io::AsyncReadExt as _;
    let unreadable = |e: std::io::Error| {
        ProviderError::Credentials(format!(
            "{field}: reading the operator's ServiceAccount token {}: {e}",
            path.display()
        ))
    };
    let file = tokio::fs::File::open(path).await.map_err(unreadable)?;
    let mut buf = Vec::new();
    file.take(MAX_TOKEN_FILE + 1)
        .read_to_end(&mut buf)
        .await
        .map_err(unreadable)?;
    if buf.len() as u64 > MAX_TOKEN_FILE {
        return Err(ProviderError::Credentials(format!(
            "{field}: the ServiceAccount token file is larger than {} KiB",
            MAX_TOKEN_FILE >> 10
        )));
    }
    let text = String::from_utf8(buf)
        .map_err(|_| ProviderError::Credentials(format!("{field}: the ServiceAccount token is not UTF-8")))?;
    Ok(Unloggable(text.trim().to_string()))
}
