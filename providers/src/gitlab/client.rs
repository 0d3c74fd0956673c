//! The GitLab client: variable reads, `dataFrom.find` over variable lists, store validation.
use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use syncret_crds::provider::gitlab::GitlabProvider as Spec;
use tokio::sync::OnceCell;

use super::{BASE, LABEL, TOKEN_FIELD};
use crate::client::{Capabilities, FindQuery, RemoteKey, SecretsClient, Validation};
use crate::error::{ProviderError, Result};
use crate::rest::{Response, Rest};
use crate::value::{RemoteValue, SecretValue};

/// Page size of list calls (GitLab's maximum).
const PER_PAGE: &str = "100";
/// Pages read of one list at most (100 000 variables).
const MAX_PAGES: u32 = 1000;
const ENV_FILTER: &str = "filter[environment_scope]";

/// A variable as the API returns it (project and group variables alike).
#[derive(Debug, Deserialize)]
struct Variable {
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    environment_scope: String,
}

#[derive(Debug, Deserialize)]
struct ProjectGroup {
    id: i64,
    #[serde(default)]
    full_path: String,
}

/// One store's client.
pub struct GitlabClient {
    spec: Spec,
    rest: Rest,
    token: HeaderValue,
    /// The groups to read, in ESO's order (least specific first): `groupIDs`, or the project's ancestors.
    groups: OnceCell<Vec<String>>,
}

fn is_wildcard(env: &str) -> bool {
    env.is_empty() || env == "*"
}

impl GitlabClient {
    pub(super) fn new(spec: Spec, rest: Rest, token: HeaderValue) -> Self {
        Self {
            spec,
            rest,
            token,
            groups: OnceCell::new(),
        }
    }

    async fn get(&self, call: &'static str, segments: &[&str], query: &[(&str, &str)]) -> Result<Response> {
        let headers = HeaderMap::from_iter([(HeaderName::from_static("private-token"), self.token.clone())]);
        self.rest.call(call, Method::GET, segments, query, headers, None).await
    }

    /// One variable of a project or group (`kind`: `projects`/`groups`), scoped to the store's environment
    /// and then `*` as ESO does; `None` when it does not exist.
    async fn variable(&self, kind: &str, id: &str, key: &str) -> Result<Option<String>> {
        let call = if kind == "projects" {
            "ProjectVariableGet"
        } else {
            "GroupVariableGet"
        };
        // ESO: no filter without an environment; `*` alone; a named environment, then `*`.
        let scopes: Vec<&str> = match self.spec.environment.as_str() {
            "" => vec![""],
            "*" => vec!["*"],
            env => vec![env, "*"],
        };
        for scope in scopes {
            let query: Vec<(&str, &str)> = if scope.is_empty() {
                Vec::new()
            } else {
                vec![(ENV_FILTER, scope)]
            };
            let resp = self.get(call, &[kind, id, "variables", key], &query).await?;
            match resp.status.as_u16() {
                200..=299 => return Ok(Some(resp.json::<Variable>(call)?.value)),
                // Only a missing variable is "not found": a missing project or group is a configuration error,
                // which must never make `deletionPolicy: Delete` remove target Secrets.
                404 if missing_variable(&resp) => continue,
                404 => {
                    return Err(ProviderError::Transport(format!(
                        "{BASE}: {kind} {id:?} not found ({})",
                        resp.describe(call)
                    )));
                }
                _ => return Err(resp.error(call, key, TOKEN_FIELD)),
            }
        }
        Ok(None)
    }

    /// The groups in ESO's order, looked up once for `inheritFromGroups`.
    async fn groups(&self) -> Result<&Vec<String>> {
        self.groups
            .get_or_try_init(|| async {
                if !self.spec.inherit_from_groups {
                    return Ok(self.spec.group_ids.clone());
                }
                let project = self.spec.project_id.as_str();
                let mut groups: Vec<ProjectGroup> = Vec::new();
                self.pages(
                    "ListProjectsGroups",
                    &["projects", project, "groups"],
                    &[],
                    |page: Vec<ProjectGroup>| groups.extend(page),
                )
                .await?;
                // Nearest ancestor last (longest path), as ESO sorts them.
                groups.sort_by_key(|g| g.full_path.len());
                Ok(groups.into_iter().map(|g| g.id.to_string()).collect())
            })
            .await
    }

    /// Every page of a list call, each handed to `each`.
    async fn pages<T: serde::de::DeserializeOwned>(
        &self,
        call: &'static str,
        segments: &[&str],
        extra: &[(&str, &str)],
        mut each: impl FnMut(Vec<T>),
    ) -> Result<()> {
        let mut page: u32 = 1;
        loop {
            let page_text = page.to_string();
            let mut query = vec![("per_page", PER_PAGE), ("page", page_text.as_str())];
            query.extend_from_slice(extra);
            let resp = self.get(call, segments, &query).await?;
            if !resp.is_success() {
                return Err(resp.error(call, segments.get(1).copied().unwrap_or_default(), TOKEN_FIELD));
            }
            each(resp.json::<Vec<T>>(call)?);
            let next = resp.header("x-next-page").map(str::trim).unwrap_or_default();
            match next.parse::<u32>() {
                Ok(n) if n > page => page = n,
                _ => return Ok(()),
            }
            if page > MAX_PAGES {
                return Err(ProviderError::Transport(format!(
                    "{call}: more than {MAX_PAGES} pages of {PER_PAGE}"
                )));
            }
        }
    }

    /// ESO's `matchesFilter`: (matches, is a `*`/unscoped variable).
    fn matches(&self, env: &str, var: &Variable, find: &FindQuery) -> (bool, bool) {
        let wildcard = is_wildcard(&var.environment_scope);
        if !wildcard && !is_wildcard(env) && var.environment_scope != env {
            return (false, wildcard);
        }
        (!var.key.is_empty() && find.matches_name(&var.key), wildcard)
    }
}

#[async_trait]
impl SecretsClient for GitlabClient {
    fn provider_label(&self) -> &'static str {
        LABEL
    }

    async fn get_secret(&self, key: &RemoteKey) -> Result<RemoteValue> {
        let name = key.key.replace('-', "_");
        let project = self.spec.project_id.trim();
        let mut value = None;
        if !project.is_empty() {
            value = self.variable("projects", project, &name).await?;
        }
        if value.is_none() {
            for group in self.groups().await?.iter().rev() {
                value = self.variable("groups", group, &name).await?;
                if value.is_some() {
                    break;
                }
            }
        }
        match value {
            None => Err(ProviderError::NotFound { key: key.key.clone() }),
            Some(v) if v.is_empty() => Err(ProviderError::InvalidValue {
                key: key.key.clone(),
                message: "invalid secret received: the variable is empty".into(),
            }),
            Some(v) => Ok(RemoteValue::Bytes(SecretValue::from(v))),
        }
    }

    async fn get_all_secrets(&self, find: &FindQuery) -> Result<BTreeMap<String, SecretValue>> {
        let mut env = self.spec.environment.clone();
        if !find.tags.is_empty() {
            let mut wanted = None;
            for (tag, value) in &find.tags {
                if tag != "environment_scope" {
                    return Err(ProviderError::Unsupported(
                        "'find.tags' only supports 'environment_scope'".into(),
                    ));
                }
                wanted = Some(value.clone());
            }
            let wanted = wanted.unwrap_or_default();
            if !is_wildcard(&env) && !is_wildcard(&wanted) {
                return Err(ProviderError::Unsupported(
                    "'find.tags' is constrained by 'environment_scope' of the store".into(),
                ));
            }
            env = wanted;
        }
        if find.path.is_some() {
            return Err(ProviderError::Unsupported(
                "'find.path' is not implemented in the GitLab provider".into(),
            ));
        }
        if find.name.is_none() {
            return Err(ProviderError::Unsupported("'find.name' is mandatory".into()));
        }
        let mut out: BTreeMap<String, SecretValue> = BTreeMap::new();
        for group in self.groups().await?.clone() {
            let mut vars: Vec<Variable> = Vec::new();
            self.pages("GroupVariablesList", &["groups", &group, "variables"], &[], |p| {
                vars.extend(p)
            })
            .await?;
            for var in vars {
                let (ok, wildcard) = self.matches(&env, &var, find);
                // A more specific value already found wins over an unscoped one.
                if !ok || (wildcard && out.contains_key(&var.key)) {
                    continue;
                }
                out.insert(var.key, SecretValue::from(var.value));
            }
        }
        let project = self.spec.project_id.trim().to_string();
        if !project.is_empty() {
            let mut vars: Vec<Variable> = Vec::new();
            self.pages("ProjectVariablesList", &["projects", &project, "variables"], &[], |p| {
                vars.extend(p)
            })
            .await?;
            let mut scoped: BTreeSet<String> = BTreeSet::new();
            for var in vars {
                let (ok, wildcard) = self.matches(&env, &var, find);
                if !ok || (wildcard && scoped.contains(&var.key)) {
                    continue;
                }
                if !wildcard {
                    scoped.insert(var.key.clone());
                }
                out.insert(var.key, SecretValue::from(var.value));
            }
        }
        Ok(out)
    }

    async fn validate(&self) -> Result<Validation> {
        let one = [("per_page", "1")];
        let project = self.spec.project_id.trim().to_string();
        if !project.is_empty() {
            let resp = self
                .get("ProjectVariablesList", &["projects", &project, "variables"], &one)
                .await?;
            if !resp.is_success() {
                return Err(not_allowed(&resp, "project", &project));
            }
        }
        for group in self.groups().await?.clone() {
            let resp = self
                .get("GroupVariablesList", &["groups", &group, "variables"], &one)
                .await?;
            if !resp.is_success() {
                return Err(not_allowed(&resp, "group", &group));
            }
        }
        Ok(Validation::Ready)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadOnly
    }
}

/// Whether a 404 says the variable is missing (`{"message": "404 Variable Not Found"}`), not its project or group.
fn missing_variable(resp: &Response) -> bool {
    serde_json::from_slice::<serde_json::Value>(&resp.body)
        .ok()
        .and_then(|v| v["message"].as_str().map(|m| m.contains("Variable")))
        .unwrap_or(false)
}

/// A failed validation list: 401 names the token field; otherwise ESO's "not allowed" wording.
fn not_allowed(resp: &Response, what: &str, id: &str) -> ProviderError {
    match resp.status.as_u16() {
        401 => resp.error("list variables", id, TOKEN_FIELD),
        403 | 404 => ProviderError::AccessDenied(format!(
            "the access token is not allowed to get secrets for {what} id [{id}] ({})",
            resp.describe("list variables")
        )),
        _ => ProviderError::Transport(format!("{BASE}: {}", resp.describe("list variables"))),
    }
}
