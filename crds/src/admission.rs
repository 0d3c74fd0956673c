//! Apply-time validation without a webhook server: the ValidatingAdmissionPolicies (one per kind) and their
//! bindings, generated from [`crate::rules`], and the CRD `x-kubernetes-validations` of the same table.
//!
//! Each [`Enforced::Policy`] rule becomes one validation of the policy of every kind that embeds its owner
//! (an ExternalSecret rule also guards ClusterExternalSecret's `spec.externalSecretSpec`). The expression walks
//! from `object` to the rule's scope (every optional field guarded by `has()`, every list through `all()`), and
//! the `messageExpression` names the first offending item by its index (`spec.dataFrom[2].rewrite[0]...`).
//! Only CEL that Kubernetes 1.30 (where ValidatingAdmissionPolicy is GA) offers is used.
//!
//! Policies validate CREATE, and UPDATE only when the spec changes, so an object created before the policy
//! can still get a finalizer, a label or its deletion without being re-judged (the CRD ratcheting analogue).
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::generate::GenerateError;
use crate::rules::{Enforced, Owner, Rule, RuleDef};

/// Name shared by every policy and binding: `syncret-<plural>`.
pub fn policy_name(plural: &str) -> String {
    format!("syncret-{plural}")
}

/// Where a kind embeds one owner of rules.
#[derive(Debug, Clone, Copy)]
pub struct Root {
    pub owner: Owner,
    /// Dotted path from the object, e.g. `spec.externalSecretSpec`.
    pub path: &'static str,
    /// CEL over `object`: the owner's rules apply only when it holds.
    pub guard: Option<&'static str>,
}

/// A kind the policies cover.
#[derive(Debug, Clone, Copy)]
pub struct KindInfo {
    pub kind: &'static str,
    pub plural: &'static str,
    pub version: &'static str,
    pub roots: &'static [Root],
}

const fn root(owner: Owner, path: &'static str) -> Root {
    Root {
        owner,
        path,
        guard: None,
    }
}

/// A template renders a Secret unless `target.manifest` names another kind.
const ES_SECRET_TARGET: &str = "!has(object.spec.target) || !has(object.spec.target.manifest) || (object.spec.target.manifest.apiVersion == 'v1' && object.spec.target.manifest.kind == 'Secret')";
const CES_SECRET_TARGET: &str = "!has(object.spec.externalSecretSpec.target) || !has(object.spec.externalSecretSpec.target.manifest) || (object.spec.externalSecretSpec.target.manifest.apiVersion == 'v1' && object.spec.externalSecretSpec.target.manifest.kind == 'Secret')";

/// Every kind, with where it embeds each owner.
pub const KINDS: [KindInfo; 6] = [
    KindInfo {
        kind: "ExternalSecret",
        plural: "externalsecrets",
        version: "v1",
        roots: &[
            root(Owner::ExternalSecret, "spec"),
            root(Owner::Template, "spec.target.template"),
            Root {
                owner: Owner::SecretTemplate,
                path: "spec.target.template",
                guard: Some(ES_SECRET_TARGET),
            },
        ],
    },
    KindInfo {
        kind: "ClusterExternalSecret",
        plural: "clusterexternalsecrets",
        version: "v1",
        roots: &[
            root(Owner::ClusterExternalSecret, "spec"),
            root(Owner::ExternalSecret, "spec.externalSecretSpec"),
            root(Owner::Template, "spec.externalSecretSpec.target.template"),
            Root {
                owner: Owner::SecretTemplate,
                path: "spec.externalSecretSpec.target.template",
                guard: Some(CES_SECRET_TARGET),
            },
        ],
    },
    KindInfo {
        kind: "SecretStore",
        plural: "secretstores",
        version: "v1",
        roots: &[root(Owner::Store, "spec"), root(Owner::NamespacedStore, "spec")],
    },
    KindInfo {
        kind: "ClusterSecretStore",
        plural: "clustersecretstores",
        version: "v1",
        roots: &[root(Owner::Store, "spec")],
    },
    KindInfo {
        kind: "PushSecret",
        plural: "pushsecrets",
        version: "v1alpha1",
        roots: &[
            root(Owner::PushSecret, "spec"),
            root(Owner::Template, "spec.template"),
            root(Owner::SecretTemplate, "spec.template"),
        ],
    },
    KindInfo {
        kind: "ClusterPushSecret",
        plural: "clusterpushsecrets",
        version: "v1alpha1",
        roots: &[
            root(Owner::ClusterPushSecret, "spec"),
            root(Owner::PushSecret, "spec.pushSecretSpec"),
            root(Owner::Template, "spec.pushSecretSpec.template"),
            root(Owner::SecretTemplate, "spec.pushSecretSpec.template"),
        ],
    },
];

/// The kind named `kind`.
pub fn kind_info(kind: &str) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.kind == kind)
}

/// The roots (path from the object) where `kind` embeds `owner`.
pub fn roots(kind: &str, owner: Owner) -> Vec<&'static str> {
    kind_info(kind)
        .map(|k| k.roots.iter().filter(|r| r.owner == owner).map(|r| r.path).collect())
        .unwrap_or_default()
}

/// Every reference to a Secret, ConfigMap or ServiceAccount under a store's `provider` (an object with `name`
/// and `namespace`), as scopes relative to the spec (`provider.webhook.secrets[].secretRef`), read once from
/// the SecretStore schema.
pub fn selector_scopes() -> &'static [&'static str] {
    static SCOPES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    SCOPES.get_or_init(|| {
        use kube::core::CustomResourceExt as _;
        let crd = crate::SecretStore::crd();
        let schema = crd
            .spec
            .versions
            .first()
            .and_then(|v| v.schema.as_ref())
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or(Value::Null);
        let mut out = Vec::new();
        if let Some(provider) = schema.pointer("/properties/spec/properties/provider") {
            collect_selectors(provider, "provider", &mut out);
        }
        out.sort();
        out.into_iter().map(|p| &*Box::leak(p.into_boxed_str())).collect()
    })
}

fn collect_selectors(schema: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(items) = schema.get("items") {
        collect_selectors(items, &format!("{path}[]"), out);
    }
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    if props.contains_key("name") && props.get("namespace").is_some_and(|n| n["type"] == "string") {
        out.push(path.to_owned());
    }
    for (name, child) in props {
        collect_selectors(child, &format!("{path}.{name}"), out);
    }
}

/// The nodes of `value` (a spec as JSON) at `scope`, with their paths under `prefix` (indexes filled in).
pub(crate) fn nodes_at<'a>(value: &'a Value, prefix: &str, scope: &str) -> Vec<(String, &'a Value)> {
    let mut nodes = vec![(prefix.to_owned(), value)];
    for seg in segments(scope) {
        let mut next = Vec::new();
        for (path, node) in nodes {
            match seg {
                Seg::Field(f) => {
                    if let Some(child) = node.get(f).filter(|c| !c.is_null()) {
                        next.push((format!("{path}.{f}"), child));
                    }
                }
                Seg::Each => {
                    for (i, item) in node.as_array().into_iter().flatten().enumerate() {
                        next.push((format!("{path}[{i}]"), item));
                    }
                }
            }
        }
        nodes = next;
    }
    nodes
}

/// One step of a path: a field, or every item of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg<'a> {
    Field(&'a str),
    Each,
}

/// `a.b[].c` → `[a, b, [], c]`.
fn segments(path: &str) -> Vec<Seg<'_>> {
    let mut segs = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let name = part.trim_end_matches("[]");
        if !name.is_empty() {
            segs.push(Seg::Field(name));
        }
        let lists = (part.len() - name.len()) / 2;
        segs.extend(std::iter::repeat_n(Seg::Each, lists));
    }
    segs
}

/// The path pattern a rule names at one root and scope: `spec.data[*].secretKey`.
pub fn pattern(root: &str, scope: &str, field: &str) -> String {
    let mut out = root.to_owned();
    for seg in segments(scope) {
        match seg {
            Seg::Field(f) => {
                out.push('.');
                out.push_str(f);
            }
            Seg::Each => out.push_str("[*]"),
        }
    }
    out.push_str(&join_field(field));
    out
}

fn join_field(field: &str) -> String {
    if field.is_empty() || field.starts_with('[') {
        field.to_owned()
    } else {
        format!(".{field}")
    }
}

/// A CEL string literal.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A non-negative Go duration (`time.ParseDuration`'s grammar, then CEL's `duration()`, which is
/// `time.ParseDuration`: a value that overflows makes the expression fail, which refuses the object).
const GO_DURATION: &str = r"^[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$";

/// robfig/cron field values (numbers with leading zeros, names case-insensitively), per field.
const CRON_FIELDS: [&str; 5] = [
    "0*([0-9]|[1-5][0-9])",
    "0*([0-9]|1[0-9]|2[0-3])",
    "0*([1-9]|[12][0-9]|3[01])",
    "(0*([1-9]|1[0-2])|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)",
    "(0*[0-6]|sun|mon|tue|wed|thu|fri|sat)",
];

fn dur(x: &str) -> String {
    format!("({x}.matches(r'{GO_DURATION}') && duration({x}) >= duration('0s'))")
}

/// True for a pattern Go's RE2 compiles; an error (refusal) otherwise.
fn regex(x: &str) -> String {
    format!("(''.matches({x}) || !''.matches({x}))")
}

fn cron(x: &str) -> String {
    let s = format!("{x}.trim()");
    let fields = format!("{s}.findAll(r'\\S+')");
    let checks: Vec<String> = CRON_FIELDS
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!("{fields}[{i}].split(',').all(p, p.matches(r'^(?i)(\\*|\\?|{v}|{v}-{v})(/0*[1-9][0-9]*)?$'))")
        })
        .collect();
    format!(
        "({s}.startsWith('@every ') ? {every} : ({s}.startsWith('@') ? {s} in ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly'] : ({fields}.size() == 5 && {checks})))",
        every = dur(&format!("{s}.substring(7).trim()")),
        checks = checks.join(" && ")
    )
}

/// Replaces `NAME(arg)` (balanced parentheses) with `f(arg)`.
fn expand_macro(text: &str, name: &str, f: &dyn Fn(&str) -> String) -> String {
    let open = format!("{name}(");
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(&open) {
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.');
        out.push_str(&rest[..at]);
        let after = &rest[at + open.len()..];
        if preceded_by_ident {
            out.push_str(&open);
            rest = after;
            continue;
        }
        let mut depth = 1usize;
        let mut end = None;
        for (i, c) in after.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        match end {
            Some(end) => {
                out.push_str(&f(&after[..end]));
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&open);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A rule's CEL with `@` (the node) and `%` (the owner's root) replaced and the macros expanded.
fn instantiate(cel: &str, node: &str, owner_root: &str) -> String {
    let text = cel.replace('@', node).replace('%', owner_root);
    let text = expand_macro(&text, "DUR", &dur);
    let text = expand_macro(&text, "REGEX", &regex);
    expand_macro(&text, "CRON", &cron)
}

/// `object.a.b` for a dotted root path.
fn object_path(root: &str) -> String {
    let mut out = "object".to_owned();
    for seg in segments(root) {
        if let Seg::Field(f) = seg {
            out.push('.');
            out.push_str(f);
        }
    }
    out
}

/// The expression that is true when every node at `segs` below `base` passes `leaf`.
fn walk(base: &str, segs: &[Seg<'_>], depth: usize, leaf: &dyn Fn(&str) -> String) -> String {
    match segs.split_first() {
        None => leaf(base),
        Some((Seg::Field(f), rest)) => {
            let next = format!("{base}.{f}");
            format!("(!has({next}) || {})", walk(&next, rest, depth, leaf))
        }
        Some((Seg::Each, rest)) => {
            let v = format!("x{depth}");
            format!("{base}.all({v}, {})", walk(&v, rest, depth + 1, leaf))
        }
    }
}

/// The first failing node below `base` and a CEL string expression of its path (indexes computed).
fn locate(base: &str, path: &mut Vec<String>, segs: &[Seg<'_>], depth: usize, leaf: &dyn Fn(&str) -> String) -> String {
    match segs.split_first() {
        None => base.to_owned(),
        Some((Seg::Field(f), rest)) => {
            path.push(quote(&format!(".{f}")));
            locate(&format!("{base}.{f}"), path, rest, depth, leaf)
        }
        Some((Seg::Each, rest)) => {
            let v = format!("x{depth}");
            let ok = walk(&v, rest, depth + 1, leaf);
            let bad = format!("{base}.filter({v}, !({ok}))[0]");
            path.push(quote("["));
            path.push(format!("string({base}.indexOf({bad}))"));
            path.push(quote("]"));
            locate(&bad, path, rest, depth + 1, leaf)
        }
    }
}

/// Joins CEL string pieces with `+`, merging neighbouring literals (`'spec' + '.data'` → `'spec.data'`).
fn join_literals(pieces: &[String]) -> String {
    let literal = |p: &str| -> Option<String> {
        let inner = p.strip_prefix('\'')?.strip_suffix('\'')?;
        // Only simple literals (no quotes or escapes inside) are merged.
        (!inner.contains(['\'', '\\'])).then(|| inner.to_owned())
    };
    let mut out: Vec<String> = Vec::new();
    let mut pending: Option<String> = None;
    for p in pieces {
        match (literal(p), pending.as_mut()) {
            (Some(text), Some(acc)) => acc.push_str(&text),
            (Some(text), None) => pending = Some(text),
            (None, _) => {
                if let Some(acc) = pending.take() {
                    out.push(quote(&acc));
                }
                out.push(p.clone());
            }
        }
    }
    if let Some(acc) = pending {
        out.push(quote(&acc));
    }
    out.join(" + ")
}

/// One generated validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    pub rule: Rule,
    pub expression: String,
    pub message: String,
    pub message_expression: String,
}

/// The validations of `kind`'s policy, in table order.
pub fn validations(kind: &KindInfo) -> Vec<Validation> {
    let mut out = Vec::new();
    for &rule in Rule::ALL {
        let RuleDef {
            owner,
            scopes,
            field,
            enforced,
            ..
        } = rule.def();
        let Enforced::Policy {
            test,
            message,
            message_expr,
            ..
        } = enforced
        else {
            continue;
        };
        for r in kind.roots.iter().filter(|r| r.owner == owner) {
            let owner_root = object_path(r.path);
            let leaf = |node: &str| instantiate(test, node, &owner_root);
            for scope in scopes {
                let root_segs = segments(r.path);
                let mut segs = root_segs.clone();
                segs.extend(segments(scope));
                let mut expression = walk("object", &segs, 0, &leaf);
                if let Some(guard) = r.guard {
                    expression = format!("!({guard}) || {expression}");
                }
                // The message: the root path as text, then the scope with indexes.
                let mut path = vec![quote(r.path)];
                let node = locate(&owner_root, &mut path, &segments(scope), 0, &leaf);
                path.push(match message_expr {
                    Some(m) => format!("({})", instantiate(m, &node, &owner_root)),
                    None => {
                        let sep = if field.is_empty() { "" } else { "." };
                        quote(&format!("{sep}{field}: {message}"))
                    }
                });
                out.push(Validation {
                    rule,
                    expression,
                    message: format!("{}: {message}", pattern(r.path, scope, field)),
                    message_expression: join_literals(&path),
                });
            }
        }
    }
    out
}

/// The ValidatingAdmissionPolicy of one kind.
pub fn policy(kind: &KindInfo) -> Value {
    let validations: Vec<Value> = validations(kind)
        .into_iter()
        .map(|v| {
            json!({
                "expression": v.expression,
                "message": v.message,
                "messageExpression": v.message_expression,
                "reason": "Invalid",
            })
        })
        .collect();
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {
            "name": policy_name(kind.plural),
            "labels": { "app.kubernetes.io/name": "syncret", "app.kubernetes.io/component": "admission-policy" },
        },
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [{
                    "apiGroups": [crate::GROUP],
                    "apiVersions": [kind.version],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": [kind.plural],
                }],
            },
            "matchConditions": [{
                "name": "spec-changed",
                "expression": "request.operation == 'CREATE' || !has(oldObject.spec) || !has(object.spec) || object.spec != oldObject.spec",
            }],
            "validations": validations,
        },
    })
}

/// The binding that enforces one kind's policy (`validationActions: [Deny]`).
pub fn binding(kind: &KindInfo) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {
            "name": policy_name(kind.plural),
            "labels": { "app.kubernetes.io/name": "syncret", "app.kubernetes.io/component": "admission-policy" },
        },
        "spec": {
            "policyName": policy_name(kind.plural),
            "validationActions": ["Deny"],
        },
    })
}

/// Every policy then every binding.
pub fn documents() -> Vec<Value> {
    KINDS.iter().map(policy).chain(KINDS.iter().map(binding)).collect()
}

const HEADER: &str = "# Generated by `syncret crds --policy <file>` from crds/src/rules.rs; do not edit.\n\
# ValidatingAdmissionPolicies (admissionregistration.k8s.io/v1, Kubernetes >= 1.30) that refuse invalid\n\
# external-secrets.io objects at apply, without a webhook server. See docs/validation.md.\n";

/// The policies and bindings as one multi-document YAML file.
pub fn render() -> Result<String, GenerateError> {
    let mut out = HEADER.to_owned();
    for doc in documents() {
        out.push_str("---\n");
        out.push_str(&crate::generate::to_sorted_yaml(doc)?);
    }
    Ok(out)
}

/// Writes [`render`] to `path` (its directory created if missing).
pub fn write(path: &Path) -> Result<PathBuf, GenerateError> {
    let io = |source| GenerateError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::write(path, render()?).map_err(io)?;
    Ok(path.to_owned())
}

/// `None` when `path` holds exactly what [`write`] would write, otherwise what differs.
pub fn check(path: &Path) -> Result<Option<String>, GenerateError> {
    let rendered = render()?;
    match std::fs::read_to_string(path) {
        Ok(on_disk) if on_disk == rendered => Ok(None),
        Ok(on_disk) => Ok(Some(format!(
            "{} differs from the rules ({})",
            path.display(),
            crate::generate::first_difference(&on_disk, &rendered)
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Some(format!("{} is missing", path.display()))),
        Err(source) => Err(GenerateError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Adds the [`Enforced::Crd`] rules to the schema of `kind` (`openAPIV3Schema`), at each root and scope.
pub(crate) fn add_crd_rules(kind: &str, schema: &mut Value) {
    let Some(info) = kind_info(kind) else { return };
    for &rule in Rule::ALL {
        let RuleDef {
            owner,
            scopes,
            enforced,
            ..
        } = rule.def();
        let Enforced::Crd { rule: cel, message } = enforced else {
            continue;
        };
        for r in info.roots.iter().filter(|r| r.owner == owner) {
            for scope in scopes {
                let mut pointer = String::new();
                for seg in segments(r.path).into_iter().chain(segments(scope)) {
                    match seg {
                        Seg::Field(f) => {
                            pointer.push_str("/properties/");
                            pointer.push_str(&f.replace('~', "~0").replace('/', "~1"));
                        }
                        Seg::Each => pointer.push_str("/items"),
                    }
                }
                let Some(node) = schema.pointer_mut(&pointer) else {
                    continue;
                };
                if let Some(map) = node.as_object_mut() {
                    let list = map
                        .entry("x-kubernetes-validations")
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Some(items) = list.as_array_mut() {
                        items.push(json!({ "rule": cel, "message": message }));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_patterns() {
        assert_eq!(
            segments("dataFrom[].rewrite[].merge"),
            [
                Seg::Field("dataFrom"),
                Seg::Each,
                Seg::Field("rewrite"),
                Seg::Each,
                Seg::Field("merge")
            ]
        );
        assert!(segments("").is_empty());
        assert_eq!(pattern("spec", "data", "[*].secretKey"), "spec.data[*].secretKey");
        assert_eq!(pattern("spec", "", ""), "spec");
        assert_eq!(
            pattern("spec.target.template", "templateFrom[]", "target"),
            "spec.target.template.templateFrom[*].target"
        );
    }

    #[test]
    fn macros_expand_with_balanced_parentheses() {
        assert_eq!(
            expand_macro("a && REGEX(f(x).y) || REGEX(z)", "REGEX", &regex),
            "a && (''.matches(f(x).y) || !''.matches(f(x).y)) || (''.matches(z) || !''.matches(z))"
        );
        assert_eq!(expand_macro("xDUR(a)", "DUR", &dur), "xDUR(a)", "only whole names");
        assert_eq!(expand_macro("DUR(a", "DUR", &dur), "DUR(a", "unbalanced is left alone");
    }

    #[test]
    fn walk_guards_fields_and_iterates_lists() {
        let leaf = |n: &str| format!("{n}.key != ''");
        assert_eq!(
            walk("object", &segments("spec.data[].remoteRef"), 0, &leaf),
            "(!has(object.spec) || (!has(object.spec.data) || object.spec.data.all(x0, (!has(x0.remoteRef) || x0.remoteRef.key != ''))))"
        );
        let mut path = vec![quote("spec")];
        let node = locate("object.spec", &mut path, &segments("data[]"), 0, &leaf);
        assert_eq!(node, "object.spec.data.filter(x0, !(x0.key != ''))[0]");
        assert_eq!(
            join_literals(&path),
            "'spec.data[' + string(object.spec.data.indexOf(object.spec.data.filter(x0, !(x0.key != ''))[0])) + ']'"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quote(r#"a 'b' \ "c""#), r#"'a \'b\' \\ "c"'"#);
    }

    #[test]
    fn only_cel_of_kubernetes_1_30() {
        // Libraries added after 1.30 (format 1.31, two-variable comprehensions 1.32, semver 1.33, ext.Lists
        // 1.34) would make the policy fail to compile on older clusters, and a failing policy refuses
        // everything it matches.
        let all: String = documents().iter().map(ToString::to_string).collect();
        for newer in [
            "format.",
            "transformList",
            "transformMap",
            "transformMapEntry",
            "semver(",
            "isSemver",
            ".distinct(",
            ".flatten(",
            ".sortBy(",
            "lists.range",
            ".slice(",
            "cel.bind",
            ".reverse(",
            ".first(",
            ".last(",
        ] {
            assert!(!all.contains(newer), "{newer} is newer than Kubernetes 1.30");
        }
    }

    #[test]
    fn every_kind_has_a_policy_and_a_binding() {
        let docs = documents();
        assert_eq!(docs.len(), 12);
        for kind in KINDS {
            let name = policy_name(kind.plural);
            assert!(
                docs.iter()
                    .any(|d| d["kind"] == "ValidatingAdmissionPolicy" && d["metadata"]["name"] == name.as_str())
            );
            assert!(
                docs.iter().any(
                    |d| d["kind"] == "ValidatingAdmissionPolicyBinding" && d["spec"]["policyName"] == name.as_str()
                )
            );
        }
    }
}
