//! The apiserver's own request counter, `apiserver_request_total`, scraped from its `/metrics` (the admin token
//! of the kubeconfig may read it) and summed by verb, resource and subresource. Differences between two scrapes
//! say what every client did in between; the bench keeps its own clients quiet (watches only) in the windows it
//! attributes to an operator, and subtracts what it did itself.
use std::collections::BTreeMap;

/// (verb, resource[/subresource]) → requests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts(pub BTreeMap<(String, String), f64>);

/// Resources the apiserver touches on its own (its identity lease heartbeat) or that are not requests of a
/// client of ours.
const IGNORED_RESOURCES: &[&str] = &["leases", ""];

impl Counts {
    /// Parses Prometheus text exposition: every `apiserver_request_total{…} value` line.
    pub fn parse(text: &str) -> Counts {
        let mut out = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
                continue;
            };
            let Some(close) = rest.rfind('}') else { continue };
            let labels = parse_labels(&rest[..close]);
            let Some(value) = rest[close + 1..]
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
            else {
                continue;
            };
            let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
            let mut resource = get("resource");
            if resource.is_empty() {
                // Non-resource URLs (discovery, /openapi, /healthz): whoever asked, it is not object work.
                continue;
            }
            let sub = get("subresource");
            if !sub.is_empty() {
                resource = format!("{resource}/{sub}");
            }
            *out.entry((get("verb"), resource)).or_insert(0.0) += value;
        }
        Counts(out)
    }

    /// `self - before`, dropping zeros.
    pub fn since(&self, before: &Counts) -> Counts {
        let mut out = BTreeMap::new();
        for (k, v) in &self.0 {
            let d = v - before.0.get(k).copied().unwrap_or(0.0);
            if d.abs() > 0.0 {
                out.insert(k.clone(), d);
            }
        }
        Counts(out)
    }

    /// Removes requests the bench made itself in the window.
    pub fn minus(&self, own: &Counts) -> Counts {
        let mut out = self.0.clone();
        for (k, v) in &own.0 {
            let e = out.entry(k.clone()).or_insert(0.0);
            *e -= v;
            if e.abs() < 0.5 {
                out.remove(k);
            }
        }
        Counts(out)
    }

    pub fn add(&mut self, verb: &str, resource: &str, n: f64) {
        *self.0.entry((verb.to_string(), resource.to_string())).or_insert(0.0) += n;
    }

    /// Requests that count as work: everything but long-running WATCHes (counted when they end, whoever
    /// started them) and the apiserver's own lease heartbeats.
    pub fn work(&self) -> Counts {
        Counts(
            self.0
                .iter()
                .filter(|((verb, res), _)| verb != "WATCH" && !IGNORED_RESOURCES.contains(&res.as_str()))
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        )
    }

    pub fn total(&self) -> f64 {
        self.0.values().sum()
    }

    /// Writes (create, update, patch, apply, delete) of Secrets.
    pub fn secret_writes(&self) -> f64 {
        self.0
            .iter()
            .filter(|((verb, res), _)| {
                res == "secrets"
                    && matches!(
                        verb.as_str(),
                        "POST" | "PUT" | "PATCH" | "APPLY" | "DELETE" | "DELETECOLLECTION"
                    )
            })
            .map(|(_, v)| v)
            .sum()
    }

    /// `VERB resource: n` entries, largest first.
    pub fn breakdown(&self) -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = self
            .0
            .iter()
            .map(|((verb, res), n)| (format!("{verb} {res}"), *n))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i] == b' ') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != b'=' {
            i += 1;
        }
        let key = s[start..i].to_string();
        i += 1; // '='
        if i >= b.len() || b[i] != b'"' {
            break;
        }
        i += 1;
        let mut val = String::new();
        while i < b.len() && b[i] != b'"' {
            if b[i] == b'\\' && i + 1 < b.len() {
                i += 1;
                val.push(match b[i] {
                    b'n' => '\n',
                    c => c as char,
                });
            } else {
                val.push(b[i] as char);
            }
            i += 1;
        }
        i += 1;
        out.insert(key, val);
    }
    out
}

/// Scrapes the apiserver's `/metrics` through the admin client.
pub async fn scrape(client: &kube::Client) -> anyhow::Result<Counts> {
    let req = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(req).await?;
    Ok(Counts::parse(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sums_and_diffs() {
        let a = Counts::parse(
            r#"# HELP apiserver_request_total x
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="secrets",scope="resource",subresource="",verb="POST",version="v1"} 10
apiserver_request_total{code="409",component="apiserver",dry_run="",group="",resource="secrets",scope="resource",subresource="",verb="POST",version="v1"} 2
apiserver_request_total{code="200",component="apiserver",dry_run="",group="external-secrets.io",resource="externalsecrets",scope="resource",subresource="status",verb="PATCH",version="v1"} 5
apiserver_request_total{code="200",component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 7
apiserver_request_total{code="0",component="apiserver",dry_run="",group="",resource="secrets",scope="cluster",subresource="",verb="WATCH",version="v1"} 1
apiserver_request_duration_seconds_bucket{le="1"} 3
"#,
        );
        assert_eq!(a.0[&("POST".into(), "secrets".into())], 12.0);
        assert_eq!(a.0[&("PATCH".into(), "externalsecrets/status".into())], 5.0);
        assert_eq!(a.work().total(), 17.0, "watches and leases are not work");
        assert_eq!(a.secret_writes(), 12.0);
        let mut b = a.clone();
        b.add("POST", "secrets", 3.0);
        let d = b.since(&a);
        assert_eq!(d.total(), 3.0);
        let mut own = Counts::default();
        own.add("POST", "secrets", 3.0);
        assert_eq!(d.minus(&own).total(), 0.0);
    }
}
