//! A 1Password Connect test server speaking the Connect server API v1 (1.8: the endpoints the Connect Go SDK, which
//! ESO uses, and syncret call):
//! - `GET /v1/vaults?filter=title eq "<name>"`, `GET /v1/vaults/:vault`.
//! - `GET /v1/vaults/:vault/items[?filter=title eq "<title>"]`: item summaries (no fields, no files).
//! - `GET`, `PUT`, `DELETE /v1/vaults/:vault/items/:item`; `POST /v1/vaults/:vault/items`: full items with
//!   `fields`, `sections`, `files` (`id`, `name`, `size`, `content_path`), `tags`, `category`.
//! - `GET /v1/vaults/:vault/items/:item/files[?inline_files=true]` (base64 `content` inline),
//!   `GET /v1/vaults/:vault/items/:item/files/:file/content`.
//! - Auth: `Authorization: Bearer <token>`; otherwise `401 {"status": 401, "message": "Invalid token signature"}`.
//!
//! IDs are 26 lower-case letters and digits, as Connect's.
use std::collections::BTreeMap;
use std::sync::Mutex;

use base64::Engine as _;
use serde_json::{Value, json};

use super::server::{Answer, Api, Request};

#[derive(Default)]
struct State {
    /// id → name.
    vaults: BTreeMap<String, String>,
    /// item id → full item.
    items: BTreeMap<String, Value>,
    /// file id → content.
    files: BTreeMap<String, Vec<u8>>,
    next: usize,
}

/// The service.
pub struct Connect {
    token: String,
    state: Mutex<State>,
}

fn error(status: u16, message: &str) -> Answer {
    Answer::json(status, json!({"status": status, "message": message}))
}

/// `title eq "X"` → `X`.
fn title_filter(filter: &str) -> Option<&str> {
    filter.strip_prefix("title eq \"")?.strip_suffix('"')
}

impl State {
    fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        let mut id = format!("{prefix}{:0>6}", self.next);
        while id.len() < 26 {
            id.push('a');
        }
        id.truncate(26);
        id
    }
}

impl Connect {
    pub fn new(token: &str) -> Connect {
        Connect {
            token: token.to_string(),
            state: Mutex::default(),
        }
    }

    /// Creates a vault; returns its ID.
    pub fn vault(&self, name: &str) -> String {
        let mut s = self.state.lock().unwrap();
        let id = s.id("vlt");
        s.vaults.insert(id.clone(), name.to_string());
        id
    }

    /// Creates an item with `(label, value)` fields and `(name, content)` files; returns its ID.
    pub fn item(
        &self,
        vault: &str,
        title: &str,
        category: &str,
        fields: &[(&str, &str)],
        files: &[(&str, &[u8])],
        tags: &[&str],
    ) -> String {
        let mut s = self.state.lock().unwrap();
        let id = s.id("itm");
        let mut file_json = Vec::new();
        for (name, content) in files {
            let fid = s.id("fil");
            s.files.insert(fid.clone(), content.to_vec());
            file_json.push(json!({"id": fid, "name": name, "size": content.len(),
                "content_path": format!("/v1/vaults/{vault}/items/{id}/files/{fid}/content")}));
        }
        let fields: Vec<Value> = fields
            .iter()
            .enumerate()
            .map(|(i, (l, v))| json!({"id": format!("f{i}"), "type": "CONCEALED", "label": l, "value": v}))
            .collect();
        let mut item = json!({"id": id, "title": title, "vault": {"id": vault}, "category": category,
            "fields": fields, "tags": tags, "version": 1, "urls": [{"href": "https://example.test"}]});
        if !file_json.is_empty() {
            item["files"] = json!(file_json);
        }
        s.items.insert(id.clone(), item);
        id
    }

    /// The full item titled `title`, if there is one.
    pub fn find(&self, title: &str) -> Option<Value> {
        self.state
            .lock()
            .unwrap()
            .items
            .values()
            .find(|i| i["title"] == title)
            .cloned()
    }

    /// The value of field `label` of the item titled `title`.
    pub fn field(&self, title: &str, label: &str) -> Option<String> {
        self.find(title)?["fields"]
            .as_array()?
            .iter()
            .find(|f| f["label"] == label)
            .and_then(|f| f["value"].as_str().map(str::to_string))
    }

    /// Sets field `label` of the item titled `title`.
    pub fn set_field(&self, title: &str, label: &str, value: &str) {
        let mut s = self.state.lock().unwrap();
        if let Some(item) = s.items.values_mut().find(|i| i["title"] == title)
            && let Some(fields) = item["fields"].as_array_mut()
            && let Some(f) = fields.iter_mut().find(|f| f["label"] == label)
        {
            f["value"] = json!(value);
        }
    }
}

fn summary(item: &Value) -> Value {
    json!({"id": item["id"], "title": item["title"], "vault": item["vault"], "category": item["category"],
           "tags": item["tags"], "version": item["version"]})
}

impl Api for Connect {
    fn handle(&self, req: &Request) -> Answer {
        if req.header("authorization") != format!("Bearer {}", self.token) {
            return error(401, "Invalid token signature");
        }
        let mut s = self.state.lock().unwrap();
        let seg = req.segments();
        let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
        let in_vault =
            |s: &State, vault: &str, item: &str| s.items.get(item).filter(|i| i["vault"]["id"] == vault).cloned();
        match (req.method.as_str(), seg.as_slice()) {
            ("GET", ["v1", "vaults"]) => {
                let wanted = title_filter(req.q("filter"));
                let list: Vec<Value> = s
                    .vaults
                    .iter()
                    .filter(|(_, n)| wanted.is_none_or(|w| w == n.as_str()))
                    .map(|(id, n)| json!({"id": id, "name": n}))
                    .collect();
                Answer::json(200, json!(list))
            }
            ("GET", ["v1", "vaults", vault]) => match s.vaults.get(*vault) {
                Some(n) => Answer::json(200, json!({"id": vault, "name": n})),
                None => error(404, "Vault not found"),
            },
            ("GET", ["v1", "vaults", vault, "items"]) => {
                if !s.vaults.contains_key(*vault) {
                    return error(404, "Vault not found");
                }
                let wanted = title_filter(req.q("filter"));
                let list: Vec<Value> = s
                    .items
                    .values()
                    .filter(|i| i["vault"]["id"] == *vault && wanted.is_none_or(|w| i["title"] == w))
                    .map(summary)
                    .collect();
                Answer::json(200, json!(list))
            }
            ("POST", ["v1", "vaults", vault, "items"]) => {
                let mut item = req.json();
                let id = s.id("itm");
                item["id"] = json!(id);
                item["vault"] = json!({"id": vault});
                item["version"] = json!(1);
                s.items.insert(id, item.clone());
                Answer::json(200, item)
            }
            ("GET", ["v1", "vaults", vault, "items", item]) => match in_vault(&s, vault, item) {
                Some(i) => Answer::json(200, i),
                None => error(404, "Item not found"),
            },
            ("PUT", ["v1", "vaults", vault, "items", item]) => {
                if in_vault(&s, vault, item).is_none() {
                    return error(404, "Item not found");
                }
                let mut new = req.json();
                new["id"] = json!(item);
                s.items.insert(item.to_string(), new.clone());
                Answer::json(200, new)
            }
            ("DELETE", ["v1", "vaults", vault, "items", item]) => {
                if in_vault(&s, vault, item).is_none() {
                    return error(404, "Item not found");
                }
                s.items.remove(*item);
                Answer {
                    status: 204,
                    headers: Vec::new(),
                    body: Vec::new(),
                }
            }
            ("GET", ["v1", "vaults", vault, "items", item, "files"]) => {
                let Some(i) = in_vault(&s, vault, item) else {
                    return error(404, "Item not found");
                };
                let inline = req.q("inline_files") == "true";
                let files: Vec<Value> = i["files"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| {
                        let mut f = f.clone();
                        if inline {
                            let content = s
                                .files
                                .get(f["id"].as_str().unwrap_or_default())
                                .cloned()
                                .unwrap_or_default();
                            f["content"] = json!(base64::engine::general_purpose::STANDARD.encode(content));
                        }
                        f
                    })
                    .collect();
                Answer::json(200, json!(files))
            }
            ("GET", ["v1", "vaults", vault, "items", item, "files", file, "content"]) => {
                if in_vault(&s, vault, item).is_none() {
                    return error(404, "Item not found");
                }
                match s.files.get(*file) {
                    Some(c) => Answer {
                        status: 200,
                        headers: Vec::new(),
                        body: c.clone(),
                    },
                    None => error(404, "File not found"),
                }
            }
            _ => error(404, "Not found"),
        }
    }
}
