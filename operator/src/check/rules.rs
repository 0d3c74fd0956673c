//! What the schema, the validation and the sync core cannot tell: fields syncret's CRDs accept but a provider
//! refuses when it builds its client (accepted but not supported), and the places where syncret behaves
//! differently from ESO on purpose (mostly the tenant boundary, `docs/security.md`).
//!
//! The table is declarative (kinds, conditions on the object's JSON, the finding) so it prints as the tables in
//! `docs/design.md` ("Accepted but not supported") and `docs/migration.md` ("What the check reports"); a test
//! fails when a document and this table differ. Implementing one of these (ParameterStore, Vault iam auth, …)
//! means deleting its row here and in the document.
use std::fmt::Write as _;
use std::net::IpAddr;

use serde_json::Value;

use super::{Finding, Level};

/// Store kinds.
pub const STORES: &[&str] = &["SecretStore", "ClusterSecretStore"];
/// Namespaced stores only (tenant rules).
pub const NAMESPACED_STORE: &[&str] = &["SecretStore"];
/// Kinds holding an ExternalSecret spec (at `spec` or `spec.externalSecretSpec`).
pub const EXTERNAL_SECRETS: &[&str] = &["ExternalSecret", "ClusterExternalSecret"];
/// Kinds holding a PushSecret spec (at `spec` or `spec.pushSecretSpec`).
pub const PUSH_SECRETS: &[&str] = &["PushSecret", "ClusterPushSecret"];

/// A test on the value(s) at a path.
#[derive(Clone, Copy, Debug)]
pub enum Test {
    /// The field is set (not null).
    Present,
    /// The field is not set.
    Absent,
    /// The field is one of these strings.
    OneOf(&'static [&'static str]),
    /// The field is set to something other than these strings.
    NoneOf(&'static [&'static str]),
    /// The field is a URL whose host syncret's default egress policy refuses to namespaced stores; `apiserver`:
    /// the cluster's own API server counts as refused (not for the kubernetes provider, whose target it is).
    DeniedHost { apiserver: bool },
}

/// One row: when every condition holds for an object of one of `kinds`, report `finding` at the first
/// condition's path (one finding per array element it matched).
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub kinds: &'static [&'static str],
    /// Paths relative to the spec (`spec` of an ExternalSecret/PushSecret/store, `spec.externalSecretSpec` of a
    /// ClusterExternalSecret, `spec.pushSecretSpec` of a ClusterPushSecret), with `[*]` for any array element.
    pub when: &'static [(&'static str, Test)],
    pub level: Level,
    /// What syncret does.
    pub message: &'static str,
    /// What to do about it.
    pub action: &'static str,
}

/// Accepted by syncret's CRDs but refused by the provider or the controller (a clear condition at run time).
pub const UNSUPPORTED: &[Rule] = &[
    Rule {
        kinds: STORES,
        when: &[("provider.aws.service", Test::OneOf(&["CertificateManager"]))],
        level: Level::Unsupported,
        message: "AWS Certificate Manager is not supported",
        action: "keep these stores on ESO with the controller-class route",
    },
    Rule {
        kinds: STORES,
        when: &[("provider.webhook.auth.ntlm", Test::Present)],
        level: Level::Unsupported,
        message: "NTLM authentication of the webhook provider is not supported (no maintained NTLM crate)",
        action: "put the credentials in headers (e.g. a Basic Authorization header from webhook.secrets), or keep the store on ESO",
    },
    Rule {
        kinds: STORES,
        when: &[(
            "provider.gcpsm.auth.workloadIdentityFederation.awsSecurityCredentials",
            Test::Present,
        )],
        level: Level::Unsupported,
        message: "GCP workload identity federation with AWS as the identity provider is not implemented yet",
        action: "use a credential configuration with a Kubernetes service-account token, a key, or keep the store on ESO",
    },
    Rule {
        kinds: EXTERNAL_SECRETS,
        when: &[(
            "dataFrom[*].sourceRef.generatorRef.kind",
            Test::OneOf(&[
                "ACRAccessToken",
                "BeyondtrustWorkloadCredentialsDynamicSecret",
                "CloudsmithAccessToken",
                "GCRAccessToken",
                "GitlabDeployToken",
                "QuayAccessToken",
                "Grafana",
            ]),
        )],
        level: Level::Unsupported,
        message: "this generator kind is not supported (see docs/generators.md for those syncret runs)",
        action: "keep this ExternalSecret (and its generator) on ESO with the controller-class route",
    },
    Rule {
        kinds: EXTERNAL_SECRETS,
        when: &[("data[*].sourceRef.generatorRef", Test::Present)],
        level: Level::Unsupported,
        message: "generatorRef in data[] is not supported (ESO does not implement it either)",
        action: "use dataFrom[].sourceRef.generatorRef on ESO",
    },
    Rule {
        kinds: PUSH_SECRETS,
        when: &[(
            "selector.generatorRef.kind",
            Test::OneOf(&[
                "ACRAccessToken",
                "BeyondtrustWorkloadCredentialsDynamicSecret",
                "CloudsmithAccessToken",
                "GCRAccessToken",
                "GitlabDeployToken",
                "QuayAccessToken",
                "Grafana",
            ]),
        )],
        level: Level::Unsupported,
        message: "this generator kind is not supported (see docs/generators.md for those syncret runs)",
        action: "push a Secret (spec.selector.secret), or keep this PushSecret on ESO",
    },
    Rule {
        kinds: PUSH_SECRETS,
        when: &[("data[*].metadata.spec.resourcePolicy", Test::Present)],
        level: Level::Unsupported,
        message: "PushSecret metadata spec.resourcePolicy (AWS Secrets Manager) is not supported",
        action: "set the resource policy outside syncret, or keep this PushSecret on ESO",
    },
    Rule {
        kinds: PUSH_SECRETS,
        when: &[("data[*].metadata.spec.replicationLocations", Test::Present)],
        level: Level::Unsupported,
        message: "PushSecret metadata spec.replicationLocations (AWS Secrets Manager) is not supported",
        action: "configure replication outside syncret, or keep this PushSecret on ESO",
    },
];

const OWN_IDENTITY: &str = "give the store its own credentials, use a ClusterSecretStore (the platform team's), or \
                            run syncret with --allow-namespaced-operator-identity (docs/security.md)";

const DENIED: &str = "a loopback, link-local, metadata or API-server address, which syncret's egress policy \
                      refuses to namespaced stores";
const DENIED_NOT_APISERVER: &str = "a loopback, link-local or metadata address, which syncret's egress policy \
                                    refuses to namespaced stores (this cluster's API server stays reachable)";
const DENIED_ACTION: &str = "use the service's real address, use a ClusterSecretStore, or exempt the address with \
                             syncret's --egress-allow (docs/security.md)";

/// Where syncret is stricter than ESO (or simply different) on purpose.
pub const DIFFERENCES: &[Rule] = &[
    Rule {
        kinds: NAMESPACED_STORE,
        when: &[("provider.aws.auth", Test::Absent), ("provider.aws", Test::Present)],
        level: Level::Difference,
        message: "no auth: ESO uses the operator's own AWS identity (pod credentials, IRSA); syncret does not lend \
                  the operator's identity to a namespaced SecretStore",
        action: OWN_IDENTITY,
    },
    Rule {
        kinds: NAMESPACED_STORE,
        when: &[("provider.gcpsm.auth", Test::Absent), ("provider.gcpsm", Test::Present)],
        level: Level::Difference,
        message: "no auth: ESO uses the operator's own Google credentials (workload identity, metadata server); \
                  syncret does not lend them to a namespaced SecretStore",
        action: OWN_IDENTITY,
    },
    Rule {
        kinds: NAMESPACED_STORE,
        when: &[("provider.azurekv.authType", Test::OneOf(&["ManagedIdentity"]))],
        level: Level::Difference,
        message: "ManagedIdentity is the operator's own identity; syncret does not lend it to a namespaced SecretStore",
        action: OWN_IDENTITY,
    },
    Rule {
        kinds: NAMESPACED_STORE,
        when: &[
            ("provider.azurekv.authType", Test::OneOf(&["WorkloadIdentity"])),
            ("provider.azurekv.serviceAccountRef", Test::Absent),
        ],
        level: Level::Difference,
        message: "WorkloadIdentity without serviceAccountRef uses the operator's federated token; syncret does not \
                  lend it to a namespaced SecretStore",
        action: OWN_IDENTITY,
    },
    Rule {
        kinds: NAMESPACED_STORE,
        when: &[
            ("provider.vault.auth.kubernetes", Test::Present),
            ("provider.vault.auth.kubernetes.serviceAccountRef", Test::Absent),
            ("provider.vault.auth.kubernetes.secretRef", Test::Absent),
        ],
        level: Level::Difference,
        message: "kubernetes auth without serviceAccountRef or secretRef logs in with the operator's own \
                  service-account token; syncret does not send it for a namespaced SecretStore",
        action: "set serviceAccountRef (a service account of the store's namespace), or run syncret with \
                 --allow-namespaced-operator-identity (docs/security.md)",
    },
    Rule {
        kinds: NAMESPACED_STORE,
        when: &[("provider.vault.server", Test::DeniedHost { apiserver: true })],
        level: Level::Difference,
        message: DENIED,
        action: DENIED_ACTION,
    },
    Rule {
        kinds: NAMESPACED_STORE,
        when: &[("provider.openBao.server", Test::DeniedHost { apiserver: true })],
        level: Level::Difference,
        message: DENIED,
        action: DENIED_ACTION,
    },
    Rule {
        kinds: NAMESPACED_STORE,
        when: &[("provider.webhook.url", Test::DeniedHost { apiserver: true })],
        level: Level::Difference,
        message: DENIED,
        action: DENIED_ACTION,
    },
    Rule {
        kinds: NAMESPACED_STORE,
        when: &[("provider.kubernetes.server.url", Test::DeniedHost { apiserver: false })],
        level: Level::Difference,
        message: DENIED_NOT_APISERVER,
        action: DENIED_ACTION,
    },
    Rule {
        kinds: STORES,
        when: &[("provider.kubernetes.authRef", Test::Present)],
        level: Level::Note,
        message: "syncret reads only inline credentials from an authRef kubeconfig (server, certificate-authority-data, \
                  token, client-certificate-data, client-key-data, tls-server-name, insecure-skip-tls-verify); \
                  exec plugins, auth providers, file paths, username/password, impersonation and proxy-url are refused",
        action: "make sure the kubeconfig in that Secret holds its credentials inline",
    },
    Rule {
        kinds: EXTERNAL_SECRETS,
        when: &[("target.manifest.kind", Test::NoneOf(&["Secret"]))],
        level: Level::Difference,
        message: "a generic target (a ConfigMap or custom resource instead of a Secret) needs \
                  --unsafe-allow-generic-targets as in ESO and, unlike ESO, its resource listed in \
                  --generic-target-resources (default configmaps); RBAC, Pods, ServiceAccounts, leases, syncret's \
                  own API and cluster-scoped kinds are never written, and Owner/Orphan do not take over an object \
                  they did not write",
        action: "run syncret with --unsafe-allow-generic-targets and the resource in --generic-target-resources \
                 (chart: genericTargets.enabled, genericTargets.resources; docs/generic-targets.md)",
    },
    Rule {
        kinds: PUSH_SECRETS,
        when: &[("deletionPolicy", Test::OneOf(&["Delete"]))],
        level: Level::Note,
        message: "deletionPolicy Delete: syncret never deletes a remote value another PushSecret still pushes \
                  (ESO #5062)",
        action: "nothing to do",
    },
];

/// The values at `path` (dot-separated, `[*]` for every array element), with their concrete paths.
pub fn at<'a>(value: &'a Value, path: &str) -> Vec<(String, &'a Value)> {
    let mut cur: Vec<(String, &Value)> = vec![(String::new(), value)];
    for seg in path.split('.') {
        let (name, all) = match seg.strip_suffix("[*]") {
            Some(n) => (n, true),
            None => (seg, false),
        };
        let mut next = Vec::new();
        for (p, v) in cur {
            let Some(child) = v.get(name).filter(|c| !c.is_null()) else {
                continue;
            };
            let p = if p.is_empty() {
                name.to_string()
            } else {
                format!("{p}.{name}")
            };
            if all {
                if let Some(items) = child.as_array() {
                    for (i, item) in items.iter().enumerate() {
                        if !item.is_null() {
                            next.push((format!("{p}[{i}]"), item));
                        }
                    }
                }
            } else {
                next.push((p, child));
            }
        }
        cur = next;
    }
    cur
}

fn holds(test: Test, found: &[(String, &Value)]) -> Vec<String> {
    match test {
        Test::Present => found.iter().map(|(p, _)| p.clone()).collect(),
        Test::Absent => Vec::new(),
        Test::OneOf(values) => found
            .iter()
            .filter(|(_, v)| v.as_str().is_some_and(|s| values.contains(&s)))
            .map(|(p, _)| p.clone())
            .collect(),
        Test::NoneOf(values) => found
            .iter()
            .filter(|(_, v)| !v.as_str().is_some_and(|s| values.contains(&s)))
            .map(|(p, _)| p.clone())
            .collect(),
        Test::DeniedHost { apiserver } => found
            .iter()
            .filter(|(_, v)| v.as_str().is_some_and(|u| denied_url(u, apiserver)))
            .map(|(p, _)| p.clone())
            .collect(),
    }
}

/// The findings of `rules` for an object of `kind` whose spec is `spec`, at paths under `prefix`.
pub fn apply(rules: &[Rule], kind: &str, spec: &Value, prefix: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for rule in rules.iter().filter(|r| r.kinds.contains(&kind)) {
        let Some(((anchor, anchor_test), rest)) = rule.when.split_first() else {
            continue;
        };
        let rest_hold = rest.iter().all(|(path, test)| {
            let found = at(spec, path);
            match test {
                Test::Absent => found.is_empty(),
                _ => !holds(*test, &found).is_empty(),
            }
        });
        if !rest_hold {
            continue;
        }
        let found = at(spec, anchor);
        let paths = match anchor_test {
            // An absent anchor is reported at its path.
            Test::Absent if found.is_empty() => vec![(*anchor).to_string()],
            _ => holds(*anchor_test, &found),
        };
        for p in paths {
            out.push(Finding {
                level: rule.level,
                field: format!("{prefix}.{p}"),
                message: rule.message.to_string(),
                action: Some(rule.action.to_string()),
            });
        }
    }
    out
}

/// The host of a URL (`scheme://user@host:port/path`), lower-cased, without brackets.
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split_once(']').map(|(h, _)| h)?
    } else {
        match hostport.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => hostport,
        }
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// Hosts of metadata services, by name.
const METADATA_NAMES: &[&str] = &[
    "localhost",
    "metadata",
    "metadata.google.internal",
    "instance-data",
    "instance-data.ec2.internal",
];

/// The cluster's own API server, by its in-cluster names.
const APISERVER_NAMES: &[&str] = &[
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// Whether a URL names an address syncret's default egress policy refuses to namespaced stores: loopback,
/// unspecified, link-local (cloud metadata at 169.254.169.254, fd00:ec2::254), other metadata addresses
/// (100.100.100.200, 192.0.0.192) and names, and (with `apiserver`) the API server's in-cluster names. Names that
/// resolve to such addresses are refused when syncret connects; this only sees what the manifest says.
pub fn denied_url(url: &str, apiserver: bool) -> bool {
    let Some(host) = host_of(url) else { return false };
    if METADATA_NAMES.contains(&host.as_str())
        || host.ends_with(".localhost")
        || (apiserver && APISERVER_NAMES.contains(&host.as_str()))
    {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            ip.is_loopback()
                || ip.is_link_local()
                || ip.is_unspecified()
                || matches!(ip.octets(), [100, 100, 100, 200] | [192, 0, 0, 192])
        }
        Ok(IpAddr::V6(ip)) => {
            let seg = ip.segments();
            ip.is_loopback()
                || ip.is_unspecified()
                || (seg[0] & 0xffc0) == 0xfe80
                || seg == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254]
                || ip
                    .to_ipv4_mapped()
                    .is_some_and(|v4| v4.is_loopback() || v4.is_link_local())
        }
        Err(_) => false,
    }
}

fn describe(when: &[(&str, Test)]) -> String {
    when.iter()
        .map(|(path, test)| match test {
            Test::Present => format!("`{path}` set"),
            Test::Absent => format!("`{path}` not set"),
            Test::OneOf(v) => format!("`{path}`: {}", v.join(", ")),
            Test::NoneOf(v) => format!("`{path}` set, not {}", v.join(", ")),
            Test::DeniedHost { apiserver: true } => format!("`{path}`: a denied address"),
            Test::DeniedHost { apiserver: false } => format!("`{path}`: a denied address other than the API server"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rows as a Markdown table (the form the documents hold).
pub fn markdown(rules: &[Rule]) -> String {
    let mut out =
        String::from("| kinds | when | reported as | syncret | what to do |\n| --- | --- | --- | --- | --- |\n");
    for r in rules {
        let level = match r.level {
            Level::Unsupported => "not supported",
            Level::Difference => "difference",
            Level::Note => "note",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {level} | {} | {} |",
            r.kinds.join(", "),
            describe(r.when),
            r.message,
            r.action
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_with_wildcards() {
        let v = json!({"data": [{"a": {"b": 1}}, {"a": null}, {"a": {"b": 2}}], "x": {"y": "z"}});
        let found: Vec<String> = at(&v, "data[*].a.b").into_iter().map(|(p, _)| p).collect();
        assert_eq!(found, ["data[0].a.b", "data[2].a.b"]);
        assert_eq!(at(&v, "x.y")[0].0, "x.y");
        assert!(at(&v, "x.q").is_empty());
        assert!(at(&v, "x[*]").is_empty());
    }

    #[test]
    fn rules_need_every_condition() {
        let aws_no_auth = json!({"provider": {"aws": {"service": "SecretsManager", "region": "eu-west-1"}}});
        let f = apply(DIFFERENCES, "SecretStore", &aws_no_auth, "spec");
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].field, "spec.provider.aws.auth");
        assert_eq!(f[0].level, Level::Difference);
        // A ClusterSecretStore keeps the operator's identity.
        assert!(apply(DIFFERENCES, "ClusterSecretStore", &aws_no_auth, "spec").is_empty());
        let with_auth = json!({"provider": {"aws": {"auth": {"secretRef": {}}}}});
        assert!(apply(DIFFERENCES, "SecretStore", &with_auth, "spec").is_empty());

        let vault =
            json!({"provider": {"vault": {"server": "http://127.0.0.1:8200", "auth": {"kubernetes": {"role": "r"}}}}});
        let fields: Vec<String> = apply(DIFFERENCES, "SecretStore", &vault, "spec")
            .into_iter()
            .map(|f| f.field)
            .collect();
        assert_eq!(
            fields,
            ["spec.provider.vault.auth.kubernetes", "spec.provider.vault.server"]
        );

        // Password, MFA and GithubAccessToken are generators syncret runs; QuayAccessToken is not.
        let es = json!({"dataFrom": [{"extract": {"key": "a"}}, {"sourceRef": {"generatorRef": {"kind": "Password", "name": "p"}}}]});
        assert!(apply(UNSUPPORTED, "ClusterExternalSecret", &es, "spec.externalSecretSpec").is_empty());
        for kind in ["MFA", "GithubAccessToken"] {
            let es = json!({"dataFrom": [{"sourceRef": {"generatorRef": {"kind": kind, "name": "p"}}}]});
            assert!(apply(UNSUPPORTED, "ExternalSecret", &es, "spec").is_empty(), "{kind}");
        }
        let es = json!({"dataFrom": [{"extract": {"key": "a"}}, {"sourceRef": {"generatorRef": {"kind": "QuayAccessToken", "name": "p"}}}]});
        let f = apply(UNSUPPORTED, "ClusterExternalSecret", &es, "spec.externalSecretSpec");
        assert_eq!(
            f[0].field,
            "spec.externalSecretSpec.dataFrom[1].sourceRef.generatorRef.kind"
        );
        assert_eq!(f[0].level, Level::Unsupported);
    }

    #[test]
    fn denied_hosts() {
        for url in [
            "http://127.0.0.1:8200",
            "https://localhost/v1",
            "http://169.254.169.254/latest/meta-data",
            "http://[fd00:ec2::254]/",
            "http://[::1]:80",
            "https://kubernetes.default.svc:443",
            "http://metadata.google.internal/computeMetadata/v1",
            "https://user:pw@0.0.0.0:1/",
            "http://[::ffff:127.0.0.1]/",
            "vault.localhost:8200",
        ] {
            assert!(denied_url(url, true), "{url}");
        }
        for url in [
            "https://vault.vault.svc:8200",
            "https://10.0.0.5",
            "https://vault.example.com",
            "https://kubernetes.example.com",
            "not a url",
            "",
        ] {
            assert!(!denied_url(url, true), "{url}");
        }
        // The kubernetes provider's target is an API server, this cluster's own included.
        assert!(!denied_url("https://kubernetes.default.svc", false));
        assert!(denied_url("http://169.254.169.254", false));
        assert!(denied_url("http://192.0.0.192/opc/v2", false));
    }

    /// Checks (or, with `SYNCRET_BLESS_DOCS=1`, rewrites) the block between `<!-- check:NAME -->` and
    /// `<!-- /check:NAME -->` of a document.
    fn block_is(doc: &str, name: &str, want: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(doc);
        let text = std::fs::read_to_string(&path).unwrap();
        let (open, close) = (format!("<!-- check:{name} -->\n"), format!("<!-- /check:{name} -->"));
        let start = text.find(&open).unwrap_or_else(|| panic!("{doc} has no {open:?}")) + open.len();
        let end = text[start..]
            .find(&close)
            .unwrap_or_else(|| panic!("{doc} has no {close:?}"))
            + start;
        if &text[start..end] == want {
            return;
        }
        if std::env::var_os("SYNCRET_BLESS_DOCS").is_some() {
            std::fs::write(&path, format!("{}{want}{}", &text[..start], &text[end..])).unwrap();
            return;
        }
        panic!(
            "{doc}: the table between {open:?} and {close:?} differs from operator/src/check/rules.rs; run \
             SYNCRET_BLESS_DOCS=1 cargo test -p syncret --lib check::rules to rewrite it. It should read:\n{want}"
        );
    }

    /// The documents print these tables; a change to the table shows in them.
    #[test]
    fn documents_print_the_tables() {
        block_is("docs/design.md", "unsupported", &markdown(UNSUPPORTED));
        block_is("docs/migration.md", "differences", &markdown(DIFFERENCES));
    }

    #[test]
    fn markdown_has_a_row_per_rule() {
        let md = markdown(UNSUPPORTED);
        assert_eq!(md.lines().count(), UNSUPPORTED.len() + 2);
        assert!(md.contains(
            "| SecretStore, ClusterSecretStore | `provider.aws.service`: CertificateManager | not supported |"
        ));
    }
}
