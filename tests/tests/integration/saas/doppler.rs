//! A Doppler test server speaking Doppler's REST API v3 (the endpoints ESO's doppler provider and syncret call):
//! - `GET /v3/projects`: `{"projects": [...], "success": true}` (the token check).
//! - `GET /v3/configs/config/secrets/download` with `project`, `config` (optional for a service token, which is
//!   bound to one config), `secrets` (comma-separated names; absent names are left out), `format` (`json`
//!   default, `env`) and `name_transformer` (`lower-snake`, `upper-camel`, `camel`, `lower-kebab`).
//! - `POST /v3/configs/config/secrets`: `{"secrets": {NAME: value}}` sets values, `{"change_requests": [{"name",
//!   "originalName", "value", "shouldDelete"}]}` renames or deletes.
//! - `POST /v3/auth/oidc`: `{"identity", "token"}` → `{"success", "token", "expires_at"}` when the identity is
//!   known and the ServiceAccount JWT carries the audience it requires.
//! - Auth: HTTP basic with the token as user name; a bad token is `401 {"messages": [...], "success": false}`.
use std::collections::BTreeMap;
use std::sync::Mutex;

use base64::Engine as _;
use serde_json::json;

use super::server::{Answer, Api, Request};

#[derive(Default)]
struct State {
    /// Token → the config it is bound to (`None`: any config, given in the query).
    tokens: BTreeMap<String, Option<(String, String)>>,
    /// (project, config) → name → value.
    configs: BTreeMap<(String, String), BTreeMap<String, String>>,
    /// OIDC identity → the audience its ServiceAccount tokens must carry.
    identities: BTreeMap<String, String>,
    issued: usize,
}

/// The service.
#[derive(Default)]
pub struct Doppler {
    state: Mutex<State>,
}

impl Doppler {
    /// A service token bound to `project`/`config`.
    pub fn service_token(&self, token: &str, project: &str, config: &str) {
        self.state
            .lock()
            .unwrap()
            .tokens
            .insert(token.into(), Some((project.into(), config.into())));
    }

    /// A token that may name any config.
    pub fn personal_token(&self, token: &str) {
        self.state.lock().unwrap().tokens.insert(token.into(), None);
    }

    pub fn set(&self, project: &str, config: &str, name: &str, value: &str) {
        self.state
            .lock()
            .unwrap()
            .configs
            .entry((project.into(), config.into()))
            .or_default()
            .insert(name.into(), value.into());
    }

    pub fn get(&self, project: &str, config: &str, name: &str) -> Option<String> {
        self.state
            .lock()
            .unwrap()
            .configs
            .get(&(project.to_string(), config.to_string()))
            .and_then(|c| c.get(name).cloned())
    }

    /// An OIDC identity accepting ServiceAccount tokens with `audience`.
    pub fn identity(&self, identity: &str, audience: &str) {
        self.state
            .lock()
            .unwrap()
            .identities
            .insert(identity.into(), audience.into());
    }
}

fn denied(message: &str) -> Answer {
    Answer::json(401, json!({"messages": [message], "success": false}))
}

/// The `aud` claims of a JWT (unverified: the test checks what syncret sent, not who signed it).
fn audiences(jwt: &str) -> Vec<String> {
    let payload = jwt.split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    match &v["aud"] {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

fn transform(name: &str, how: &str) -> String {
    let words: Vec<String> = name.split('_').map(str::to_lowercase).collect();
    let cap = |w: &String| {
        let mut c = w.chars();
        c.next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    };
    match how {
        "lower-snake" => words.join("_"),
        "lower-kebab" => words.join("-"),
        "upper-camel" => words.iter().map(cap).collect(),
        "camel" => words
            .iter()
            .enumerate()
            .map(|(i, w)| if i == 0 { w.clone() } else { cap(w) })
            .collect(),
        _ => name.to_string(),
    }
}

impl Doppler {
    /// The config a request addresses with `token`: the token's own, or `project`/`config` from `from`.
    fn config_of(s: &State, token: &str, project: &str, config: &str) -> Result<(String, String), Answer> {
        match s.tokens.get(token) {
            None => Err(denied("Invalid Auth token")),
            Some(Some(bound)) => {
                if (!project.is_empty() && project != bound.0) || (!config.is_empty() && config != bound.1) {
                    return Err(Answer::json(
                        403,
                        json!({"messages": ["Service token cannot access this config"], "success": false}),
                    ));
                }
                Ok(bound.clone())
            }
            Some(None) if project.is_empty() || config.is_empty() => Err(Answer::json(
                400,
                json!({"messages": ["You must specify a project and config"], "success": false}),
            )),
            Some(None) => Ok((project.to_string(), config.to_string())),
        }
    }
}

impl Api for Doppler {
    fn handle(&self, req: &Request) -> Answer {
        let mut s = self.state.lock().unwrap();
        if req.method == "POST" && req.path == "/v3/auth/oidc" {
            let body = req.json();
            let identity = body["identity"].as_str().unwrap_or_default();
            let jwt = body["token"].as_str().unwrap_or_default();
            let Some(audience) = s.identities.get(identity).cloned() else {
                return Answer::json(401, json!({"messages": ["Unknown identity"], "success": false}));
            };
            if !audiences(jwt).contains(&audience) {
                return Answer::json(401, json!({"messages": ["Invalid token audience"], "success": false}));
            }
            s.issued += 1;
            let token = format!("dp.sa.issued{}", s.issued);
            s.tokens.insert(token.clone(), None);
            let expires = (chrono::Utc::now() + chrono::Duration::minutes(10)).to_rfc3339();
            return Answer::json(200, json!({"success": true, "token": token, "expires_at": expires}));
        }
        let auth = req.header("authorization");
        let token = auth
            .strip_prefix("Basic ")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.strip_suffix(':').map(str::to_string))
            .unwrap_or_default();
        if !s.tokens.contains_key(&token) {
            return denied("Invalid Auth token");
        }
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/v3/projects") => {
                let mut projects: Vec<&String> = s.configs.keys().map(|(p, _)| p).collect();
                projects.dedup();
                let list: Vec<serde_json::Value> = projects
                    .iter()
                    .map(|p| json!({"id": p, "slug": p, "name": p}))
                    .collect();
                Answer::json(200, json!({"projects": list, "page": 1, "success": true}))
            }
            ("GET", "/v3/configs/config/secrets/download") => {
                let at = match Self::config_of(&s, &token, req.q("project"), req.q("config")) {
                    Ok(at) => at,
                    Err(a) => return a,
                };
                let Some(values) = s.configs.get(&at) else {
                    return Answer::json(
                        404,
                        json!({"messages": ["Could not find requested config"], "success": false}),
                    );
                };
                let wanted: Vec<&str> = req.q("secrets").split(',').filter(|n| !n.is_empty()).collect();
                let how = req.q("name_transformer");
                let picked: BTreeMap<String, String> = values
                    .iter()
                    .filter(|(k, _)| wanted.is_empty() || wanted.contains(&k.as_str()))
                    .map(|(k, v)| (transform(k, how), v.clone()))
                    .collect();
                match req.q("format") {
                    "" | "json" => Answer::json(200, json!(picked)),
                    "env" => {
                        let text: String = picked.iter().map(|(k, v)| format!("{k}=\"{v}\"\n")).collect();
                        Answer::text(200, &text)
                    }
                    other => Answer::json(
                        400,
                        json!({"messages": [format!("unsupported format {other}")], "success": false}),
                    ),
                }
            }
            ("POST", "/v3/configs/config/secrets") => {
                let body = req.json();
                let at = match Self::config_of(
                    &s,
                    &token,
                    body["project"].as_str().unwrap_or_default(),
                    body["config"].as_str().unwrap_or_default(),
                ) {
                    Ok(at) => at,
                    Err(a) => return a,
                };
                let values = s.configs.entry(at).or_default();
                if let Some(set) = body["secrets"].as_object() {
                    for (k, v) in set {
                        values.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
                    }
                }
                for change in body["change_requests"].as_array().into_iter().flatten() {
                    let name = change["originalName"]
                        .as_str()
                        .or(change["name"].as_str())
                        .unwrap_or_default();
                    if change["shouldDelete"].as_bool() == Some(true) {
                        if values.remove(name).is_none() {
                            return Answer::json(
                                400,
                                json!({"messages": [format!("Secret {name} does not exist")], "success": false}),
                            );
                        }
                    } else if let Some(v) = change["value"].as_str() {
                        values.insert(change["name"].as_str().unwrap_or(name).to_string(), v.to_string());
                    }
                }
                Answer::json(200, json!({"secrets": {}, "success": true}))
            }
            _ => Answer::json(404, json!({"messages": ["Not found"], "success": false})),
        }
    }
}
