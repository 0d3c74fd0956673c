//! An Infisical test server speaking Infisical's REST API (the endpoints of the Infisical Go SDK that ESO's
//! infisical provider and syncret call):
//! - `POST /api/v1/auth/universal-auth/login` (`clientId`, `clientSecret`), `…/jwt-auth/login` and
//!   `…/kubernetes-auth/login` (`identityId`, `jwt`), `…/ldap-auth/login` (`identityId`, `username`,
//!   `password`) → `{"accessToken", "expiresIn", "accessTokenMaxTTL", "tokenType": "Bearer"}`.
//! - `POST /api/v1/auth/token/revoke` (`accessToken`).
//! - `GET /api/v3/secrets/raw` (`workspaceSlug`, `environment`, `secretPath`, `recursive`, `include_imports`,
//!   `expandSecretReferences`) → `{"secrets": [...], "imports": [{"secretPath", "environment", "secrets"}]}`.
//! - `GET /api/v3/secrets/raw/:name` (the same scope, `include_imports`, `type`) → `{"secret": {...}}`, 404 when
//!   absent; `${NAME}` references to the same folder are expanded when asked.
//! - `POST`, `PATCH`, `DELETE /api/v3/secrets/raw/:name` (`workspaceId`, `environment`, `secretPath`,
//!   `secretValue`, `type`).
//! - `GET /api/v1/projects/slug/:slug` → `{"id", "slug", …}`.
//! - Auth: `Authorization: Bearer <access token>`; errors are `{"statusCode", "message", "error"}`.
use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::json;

use super::server::{Answer, Api, Request};

#[derive(Default)]
struct State {
    /// slug → id.
    projects: BTreeMap<String, String>,
    /// (project slug, environment, folder) → name → value.
    secrets: BTreeMap<(String, String, String), BTreeMap<String, String>>,
    /// (project slug, environment, folder) → imported (environment, folder).
    imports: BTreeMap<(String, String, String), Vec<(String, String)>>,
    universal: BTreeMap<String, String>,
    /// identity → the JWT it accepts (JWT and Kubernetes auth).
    jwt: BTreeMap<String, String>,
    ldap: BTreeMap<String, (String, String)>,
    /// Access tokens that are valid.
    tokens: BTreeMap<String, bool>,
    issued: usize,
    expires_in: i64,
}

/// The service.
pub struct Infisical {
    state: Mutex<State>,
}

impl Default for Infisical {
    fn default() -> Self {
        Infisical {
            state: Mutex::new(State {
                expires_in: 7200,
                ..Default::default()
            }),
        }
    }
}

fn error(status: u16, message: &str) -> Answer {
    let name = match status {
        401 => "UnauthorizedError",
        403 => "PermissionDenied",
        404 => "NotFound",
        _ => "BadRequest",
    };
    Answer::json(status, json!({"statusCode": status, "message": message, "error": name}))
}

fn secret_json(name: &str, value: &str, env: &str, folder: &str) -> serde_json::Value {
    json!({"id": format!("id-{name}"), "workspace": "w", "environment": env, "version": 1, "type": "shared",
           "secretKey": name, "secretValue": value, "secretComment": "", "secretPath": folder})
}

impl Infisical {
    pub fn project(&self, slug: &str, id: &str) {
        self.state.lock().unwrap().projects.insert(slug.into(), id.into());
    }

    pub fn set(&self, project: &str, env: &str, folder: &str, name: &str, value: &str) {
        self.state
            .lock()
            .unwrap()
            .secrets
            .entry((project.into(), env.into(), folder.into()))
            .or_default()
            .insert(name.into(), value.into());
    }

    pub fn get(&self, project: &str, env: &str, folder: &str, name: &str) -> Option<String> {
        self.state
            .lock()
            .unwrap()
            .secrets
            .get(&(project.to_string(), env.to_string(), folder.to_string()))
            .and_then(|m| m.get(name).cloned())
    }

    /// Folder `folder` imports the secrets of `from_env`/`from_folder`.
    pub fn import(&self, project: &str, env: &str, folder: &str, from_env: &str, from_folder: &str) {
        self.state
            .lock()
            .unwrap()
            .imports
            .entry((project.into(), env.into(), folder.into()))
            .or_default()
            .push((from_env.into(), from_folder.into()));
    }

    pub fn universal_identity(&self, client_id: &str, client_secret: &str) {
        self.state
            .lock()
            .unwrap()
            .universal
            .insert(client_id.into(), client_secret.into());
    }

    /// A JWT or Kubernetes auth identity accepting exactly `jwt`.
    pub fn jwt_identity(&self, identity: &str, jwt: &str) {
        self.state.lock().unwrap().jwt.insert(identity.into(), jwt.into());
    }

    pub fn ldap_identity(&self, identity: &str, user: &str, password: &str) {
        self.state
            .lock()
            .unwrap()
            .ldap
            .insert(identity.into(), (user.into(), password.into()));
    }

    /// A pre-issued access token (token auth).
    pub fn access_token(&self, token: &str) {
        self.state.lock().unwrap().tokens.insert(token.into(), true);
    }

    /// The lifetime logins answer.
    pub fn expires_in(&self, seconds: i64) {
        self.state.lock().unwrap().expires_in = seconds;
    }

    /// Tokens revoked so far.
    pub fn revoked(&self) -> usize {
        self.state.lock().unwrap().tokens.values().filter(|v| !**v).count()
    }

    fn issue(s: &mut State) -> Answer {
        s.issued += 1;
        let token = format!("ist.{}", s.issued);
        s.tokens.insert(token.clone(), true);
        Answer::json(
            200,
            json!({"accessToken": token, "expiresIn": s.expires_in, "accessTokenMaxTTL": 2592000, "tokenType": "Bearer"}),
        )
    }
}

/// `${NAME}` replaced by NAME's value in `values` (one level, as this test server needs).
fn expand(value: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = value.to_string();
    for (k, v) in values {
        out = out.replace(&format!("${{{k}}}"), v);
    }
    out
}

impl Api for Infisical {
    fn handle(&self, req: &Request) -> Answer {
        let mut s = self.state.lock().unwrap();
        let seg = req.segments();
        let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
        let body = req.json();
        let text = |k: &str| body[k].as_str().unwrap_or_default().to_string();
        if req.method == "POST"
            && let ["api", "v1", "auth", method, "login"] = seg.as_slice()
        {
            let ok = match *method {
                "universal-auth" => s.universal.get(&text("clientId")) == Some(&text("clientSecret")),
                "jwt-auth" | "kubernetes-auth" => s.jwt.get(&text("identityId")) == Some(&text("jwt")),
                "ldap-auth" => s.ldap.get(&text("identityId")) == Some(&(text("username"), text("password"))),
                _ => return error(404, "Route not found"),
            };
            return if ok {
                Self::issue(&mut s)
            } else {
                error(401, "Invalid credentials")
            };
        }
        let bearer = req
            .header("authorization")
            .strip_prefix("Bearer ")
            .unwrap_or_default()
            .to_string();
        if s.tokens.get(&bearer) != Some(&true) {
            return error(401, "Token missing or invalid");
        }
        let scope = (
            req.q("workspaceSlug").to_string(),
            req.q("environment").to_string(),
            match req.q("secretPath") {
                "" => "/".to_string(),
                p => p.to_string(),
            },
        );
        let expand_refs = req.q("expandSecretReferences") == "true";
        let imports = req.q("include_imports") == "true";
        match (req.method.as_str(), seg.as_slice()) {
            ("POST", ["api", "v1", "auth", "token", "revoke"]) => {
                s.tokens.insert(text("accessToken"), false);
                Answer::json(200, json!({"message": "Successfully revoked access token"}))
            }
            ("GET", ["api", "v1", "projects", "slug", slug]) => match s.projects.get(*slug) {
                Some(id) => Answer::json(200, json!({"id": id, "slug": slug, "name": slug})),
                None => error(404, "Project not found"),
            },
            ("GET", ["api", "v3", "secrets", "raw"]) => {
                let recursive = req.q("recursive") == "true";
                let mut secrets = Vec::new();
                for ((p, e, folder), values) in &s.secrets {
                    let inside = if recursive {
                        folder.starts_with(&scope.2)
                    } else {
                        *folder == scope.2
                    };
                    if *p == scope.0 && *e == scope.1 && inside {
                        for (k, v) in values {
                            let v = if expand_refs { expand(v, values) } else { v.clone() };
                            secrets.push(secret_json(k, &v, e, folder));
                        }
                    }
                }
                let mut blocks = Vec::new();
                if imports {
                    for (env, folder) in s.imports.get(&scope).into_iter().flatten() {
                        let values = s.secrets.get(&(scope.0.clone(), env.clone(), folder.clone()));
                        let list: Vec<serde_json::Value> = values
                            .into_iter()
                            .flatten()
                            .map(|(k, v)| secret_json(k, v, env, folder))
                            .collect();
                        blocks
                            .push(json!({"secretPath": folder, "environment": env, "folderId": "f", "secrets": list}));
                    }
                }
                Answer::json(200, json!({"secrets": secrets, "imports": blocks}))
            }
            ("GET", ["api", "v3", "secrets", "raw", name]) => {
                if let Some(values) = s.secrets.get(&scope)
                    && let Some(v) = values.get(*name)
                {
                    let v = if expand_refs { expand(v, values) } else { v.clone() };
                    return Answer::json(200, json!({"secret": secret_json(name, &v, &scope.1, &scope.2)}));
                }
                if imports {
                    for (env, folder) in s.imports.get(&scope).into_iter().flatten() {
                        if let Some(v) = s
                            .secrets
                            .get(&(scope.0.clone(), env.clone(), folder.clone()))
                            .and_then(|m| m.get(*name))
                        {
                            return Answer::json(200, json!({"secret": secret_json(name, v, env, folder)}));
                        }
                    }
                }
                error(404, &format!("Secret with name '{name}' not found"))
            }
            (method @ ("POST" | "PATCH" | "DELETE"), ["api", "v3", "secrets", "raw", name]) => {
                let Some(slug) = s
                    .projects
                    .iter()
                    .find(|(_, id)| **id == text("workspaceId"))
                    .map(|(k, _)| k.clone())
                else {
                    return error(404, "Project not found");
                };
                let folder = match text("secretPath").as_str() {
                    "" => "/".to_string(),
                    p => p.to_string(),
                };
                let values = s.secrets.entry((slug, text("environment"), folder)).or_default();
                let exists = values.contains_key(*name);
                match (method, exists) {
                    ("POST", true) => error(400, "Secret already exist"),
                    ("PATCH" | "DELETE", false) => error(404, "Secret not found"),
                    ("DELETE", true) => {
                        values.remove(*name);
                        Answer::json(200, json!({"secret": secret_json(name, "", "", "")}))
                    }
                    _ => {
                        values.insert(name.to_string(), text("secretValue"));
                        Answer::json(200, json!({"secret": secret_json(name, &text("secretValue"), "", "")}))
                    }
                }
            }
            _ => error(404, "Route not found"),
        }
    }
}
