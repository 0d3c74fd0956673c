//! A GitLab test server speaking GitLab's REST API v4 for CI/CD variables (the endpoints ESO's gitlab provider and
//! syncret call):
//! - `GET /api/v4/projects/:id/variables` and `GET /api/v4/groups/:id/variables`: lists, paginated with `per_page`
//!   (default 20, at most 100) and `page`, answering `X-Page`, `X-Per-Page`, `X-Next-Page`, `X-Total-Pages`.
//! - `GET /api/v4/projects/:id/variables/:key` and `GET /api/v4/groups/:id/variables/:key`, with the optional
//!   `filter[environment_scope]`: `404 {"message":"404 Variable Not Found"}` when absent, `409` when several
//!   scopes match and no filter was given.
//! - `GET /api/v4/projects/:id/groups`: the project's ancestor groups (`id`, `full_path`).
//! - Auth: the `PRIVATE-TOKEN` header; anything else is `401 {"message":"401 Unauthorized"}`.
//!
//! Project IDs may be numeric or URL-encoded paths (`group%2Fproject`).
use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::json;

use super::server::{Answer, Api, Request};

#[derive(Clone)]
struct Var {
    key: String,
    value: String,
    scope: String,
}

#[derive(Default)]
struct State {
    projects: BTreeMap<String, Vec<Var>>,
    groups: BTreeMap<String, (String, Vec<Var>)>,
    project_groups: BTreeMap<String, Vec<String>>,
}

/// The service.
pub struct Gitlab {
    token: String,
    state: Mutex<State>,
}

impl Gitlab {
    pub fn new(token: &str) -> Gitlab {
        Gitlab {
            token: token.to_string(),
            state: Mutex::default(),
        }
    }

    /// Sets a project variable of `scope` (`*` for all environments).
    pub fn project_var(&self, project: &str, key: &str, value: &str, scope: &str) {
        let mut s = self.state.lock().unwrap();
        let vars = s.projects.entry(project.to_string()).or_default();
        vars.retain(|v| !(v.key == key && v.scope == scope));
        vars.push(Var {
            key: key.into(),
            value: value.into(),
            scope: scope.into(),
        });
    }

    /// Creates a group with its full path.
    pub fn group(&self, id: &str, full_path: &str) {
        let mut s = self.state.lock().unwrap();
        s.groups.entry(id.to_string()).or_default().0 = full_path.to_string();
    }

    pub fn group_var(&self, group: &str, key: &str, value: &str, scope: &str) {
        let mut s = self.state.lock().unwrap();
        let vars = &mut s.groups.entry(group.to_string()).or_default().1;
        vars.retain(|v| !(v.key == key && v.scope == scope));
        vars.push(Var {
            key: key.into(),
            value: value.into(),
            scope: scope.into(),
        });
    }

    /// The ancestor groups of a project.
    pub fn project_groups(&self, project: &str, groups: &[&str]) {
        self.state
            .lock()
            .unwrap()
            .project_groups
            .insert(project.to_string(), groups.iter().map(|g| g.to_string()).collect());
    }
}

fn var_json(v: &Var) -> serde_json::Value {
    json!({"variable_type": "env_var", "key": v.key, "value": v.value, "protected": false, "masked": false,
           "raw": false, "environment_scope": v.scope, "description": null})
}

fn not_found(what: &str) -> Answer {
    Answer::json(404, json!({"message": format!("404 {what} Not Found")}))
}

fn page(req: &Request, items: Vec<serde_json::Value>) -> Answer {
    let per_page: usize = req.q("per_page").parse().unwrap_or(20).clamp(1, 100);
    let page: usize = req.q("page").parse().unwrap_or(1).max(1);
    let total_pages = items.len().div_ceil(per_page).max(1);
    let slice: Vec<serde_json::Value> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    let next = if page < total_pages {
        (page + 1).to_string()
    } else {
        String::new()
    };
    Answer::json(200, json!(slice))
        .with_header("x-page", &page.to_string())
        .with_header("x-per-page", &per_page.to_string())
        .with_header("x-next-page", &next)
        .with_header("x-total-pages", &total_pages.to_string())
}

/// One variable of `vars` by key and optional scope filter.
fn one(vars: &[Var], key: &str, filter: &str) -> Answer {
    let matching: Vec<&Var> = vars
        .iter()
        .filter(|v| v.key == key && (filter.is_empty() || v.scope == filter))
        .collect();
    match matching.as_slice() {
        [] => not_found("Variable"),
        [v] => Answer::json(200, var_json(v)),
        _ => Answer::json(
            409,
            json!({"message": "There are multiple variables with provided parameters. Please use 'filter[environment_scope]'"}),
        ),
    }
}

impl Api for Gitlab {
    fn handle(&self, req: &Request) -> Answer {
        if req.header("private-token") != self.token {
            return Answer::json(401, json!({"message": "401 Unauthorized"}));
        }
        if req.method != "GET" {
            return Answer::json(405, json!({"message": "405 Method Not Allowed"}));
        }
        let s = self.state.lock().unwrap();
        let seg = req.segments();
        let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
        let filter = req.q("filter[environment_scope]");
        match seg.as_slice() {
            ["api", "v4", "projects", id, "variables"] => match s.projects.get(*id) {
                Some(vars) => page(req, vars.iter().map(var_json).collect()),
                None => not_found("Project"),
            },
            ["api", "v4", "projects", id, "variables", key] => match s.projects.get(*id) {
                Some(vars) => one(vars, key, filter),
                None => not_found("Project"),
            },
            ["api", "v4", "groups", id, "variables"] => match s.groups.get(*id) {
                Some((_, vars)) => page(req, vars.iter().map(var_json).collect()),
                None => not_found("Group"),
            },
            ["api", "v4", "groups", id, "variables", key] => match s.groups.get(*id) {
                Some((_, vars)) => one(vars, key, filter),
                None => not_found("Group"),
            },
            ["api", "v4", "projects", id, "groups"] => match s.project_groups.get(*id) {
                Some(ids) => page(
                    req,
                    ids.iter()
                        .map(|g| {
                            let path = s.groups.get(g).map(|(p, _)| p.clone()).unwrap_or_default();
                            json!({"id": g.parse::<i64>().unwrap_or_default(), "full_path": path, "name": path})
                        })
                        .collect(),
                ),
                None => not_found("Project"),
            },
            _ => Answer::json(404, json!({"error": "404 Not Found"})),
        }
    }
}
