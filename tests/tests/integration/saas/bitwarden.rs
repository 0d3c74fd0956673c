//! A Bitwarden SDK server test stand-in speaking the REST API of `external-secrets/bitwarden-sdk-server` (v0.6, the
//! HTTPS service ESO deploys beside itself; it logs in to Bitwarden with the `Warden-Access-Token` of every
//! request): every call carries a JSON body, `GET`s included.
//! - `GET /rest/api/1/secrets` (`organizationId`) → `{"data": [{"id", "key", "organizationId"}]}`.
//! - `GET /rest/api/1/secret` (`id`) → a secret (`id`, `key`, `value`, `note`, `organizationId`, `projectId`,
//!   `creationDate`, `revisionDate`).
//! - `GET /rest/api/1/secrets-by-ids` (`ids`) → `{"data": [secret, …]}`; any unknown ID fails the call.
//! - `POST /rest/api/1/secret` (`key`, `value`, `note`, `organizationId`, `projectIds`), `PUT /rest/api/1/secret`
//!   (the same with `id`), `DELETE /rest/api/1/secret` (`ids`) → `{"data": [{"id", "error"}]}`.
//! - Errors as the SDK server gives them: plain text; no token `401 Missing Warden access token`, a refused one
//!   `400 failed to login to bitwarden using access token: …`, a failed call `400 failed to get secret: …`.
use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Value, json};

use super::server::{Answer, Api, Request};

#[derive(Default)]
struct State {
    secrets: BTreeMap<String, Value>,
    next: u64,
}

/// The service.
pub struct SdkServer {
    token: String,
    organization: String,
    state: Mutex<State>,
}

impl SdkServer {
    pub fn new(token: &str, organization: &str) -> SdkServer {
        SdkServer {
            token: token.into(),
            organization: organization.into(),
            state: Mutex::default(),
        }
    }

    /// Adds a secret to `project`; returns its ID.
    pub fn add(&self, project: &str, key: &str, value: &str, note: &str) -> String {
        let mut s = self.state.lock().unwrap();
        s.next += 1;
        let id = format!("5e1e0000-0000-4000-8000-{:012x}", s.next);
        s.secrets.insert(
            id.clone(),
            json!({"id": id, "key": key, "value": value, "note": note, "organizationId": self.organization,
                   "projectId": project, "creationDate": "2026-01-01T00:00:00Z", "revisionDate": "2026-01-01T00:00:00Z"}),
        );
        id
    }

    /// Every secret named `key`: (project, value, note).
    pub fn named(&self, key: &str) -> Vec<(String, String, String)> {
        self.state
            .lock()
            .unwrap()
            .secrets
            .values()
            .filter(|s| s["key"] == key)
            .map(|s| {
                let t = |k: &str| s[k].as_str().unwrap_or_default().to_string();
                (t("projectId"), t("value"), t("note"))
            })
            .collect()
    }
}

impl Api for SdkServer {
    fn handle(&self, req: &Request) -> Answer {
        let token = req.header("warden-access-token");
        if token.is_empty() {
            return Answer::text(401, "Missing Warden access token\n");
        }
        if token != self.token {
            return Answer::text(
                400,
                "failed to login to bitwarden using access token: invalid access token\n",
            );
        }
        let body = req.json();
        let mut s = self.state.lock().unwrap();
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/rest/api/1/secrets") => {
                let org = body["organizationId"]
                    .as_str()
                    .or(body["organizationID"].as_str())
                    .unwrap_or_default();
                let data: Vec<Value> = s
                    .secrets
                    .values()
                    .filter(|x| x["organizationId"] == org)
                    .map(|x| json!({"id": x["id"], "key": x["key"], "organizationId": x["organizationId"]}))
                    .collect();
                Answer::json(200, json!({"data": data}))
            }
            ("GET", "/rest/api/1/secret") => match s.secrets.get(body["id"].as_str().unwrap_or_default()) {
                Some(x) => Answer::json(200, x.clone()),
                None => Answer::text(400, "failed to get secret: 404 Not Found\n"),
            },
            ("GET", "/rest/api/1/secrets-by-ids") => {
                let mut data = Vec::new();
                for id in body["ids"].as_array().into_iter().flatten() {
                    match s.secrets.get(id.as_str().unwrap_or_default()) {
                        Some(x) => data.push(x.clone()),
                        None => return Answer::text(400, "failed to get secrets: 404 Not Found\n"),
                    }
                }
                Answer::json(200, json!({"data": data}))
            }
            ("POST", "/rest/api/1/secret") => {
                s.next += 1;
                let id = format!("5e1e0000-0000-4000-8000-{:012x}", s.next);
                let project = body["projectIds"][0].clone();
                let secret = json!({"id": id, "key": body["key"], "value": body["value"], "note": body["note"],
                    "organizationId": body["organizationId"], "projectId": project,
                    "creationDate": "2026-01-01T00:00:00Z", "revisionDate": "2026-01-01T00:00:00Z"});
                s.secrets.insert(id, secret.clone());
                Answer::json(200, secret)
            }
            ("PUT", "/rest/api/1/secret") => {
                let id = body["id"].as_str().unwrap_or_default().to_string();
                let Some(x) = s.secrets.get_mut(&id) else {
                    return Answer::text(400, "failed to update secret: 404 Not Found\n");
                };
                for k in ["key", "value", "note"] {
                    x[k] = body[k].clone();
                }
                x["projectId"] = body["projectIds"][0].clone();
                Answer::json(200, x.clone())
            }
            ("DELETE", "/rest/api/1/secret") => {
                let mut data = Vec::new();
                for id in body["ids"].as_array().into_iter().flatten() {
                    let id = id.as_str().unwrap_or_default();
                    let error = s.secrets.remove(id).is_none().then_some("404 Not Found");
                    data.push(json!({"id": id, "error": error}));
                }
                Answer::json(200, json!({"data": data}))
            }
            _ => Answer::text(404, "404 page not found\n"),
        }
    }
}
