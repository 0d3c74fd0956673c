//! Looking for secret values where they must never be: logs, Events, status conditions, metrics.
//!
//! Every value is searched in the forms it could take on the way out: raw bytes, standard and URL-safe base64
//! (as in a Secret's `data`), JSON-string escaping, Rust `Debug` escaping and lowercase hex.
use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};

use base64::Engine as _;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};

/// The secret values a test used (remote values, rendered values, credentials).
#[derive(Default)]
pub struct Values {
    values: BTreeSet<Vec<u8>>,
}

/// Where one value was found.
#[derive(Debug)]
pub struct Found {
    pub place: String,
    pub form: &'static str,
    pub value: String,
    pub context: String,
}

impl Values {
    pub fn add(&mut self, v: impl AsRef<[u8]>) {
        let v = v.as_ref();
        // Short values (a port, "true") are not secrets the grep can tell apart from ordinary text.
        if v.len() >= 8 {
            self.values.insert(v.to_vec());
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Needles per value: (form, bytes).
    fn needles(v: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
        let mut out = vec![
            ("raw", v.to_vec()),
            (
                "base64",
                base64::engine::general_purpose::STANDARD.encode(v).into_bytes(),
            ),
            (
                "base64url",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v).into_bytes(),
            ),
            (
                "hex",
                v.iter().map(|b| format!("{b:02x}")).collect::<String>().into_bytes(),
            ),
        ];
        if let Ok(s) = std::str::from_utf8(v) {
            let json = serde_json::to_string(s).unwrap_or_default();
            out.push(("json", json.trim_matches('"').as_bytes().to_vec()));
            let debug = format!("{s:?}");
            out.push(("debug", debug.trim_matches('"').as_bytes().to_vec()));
        }
        // A base64 value without its padding is still the value.
        if let Some((_, b)) = out.get_mut(1) {
            while b.last() == Some(&b'=') {
                b.pop();
            }
        }
        out.sort();
        out.dedup_by(|a, b| a.1 == b.1);
        out
    }

    /// Every occurrence of any value (any form) in `haystack`.
    pub fn scan(&self, place: &str, haystack: &[u8]) -> Vec<Found> {
        let mut found = Vec::new();
        for v in &self.values {
            for (form, needle) in Self::needles(v) {
                if needle.len() < 8 {
                    continue;
                }
                if let Some(at) = find(haystack, &needle) {
                    let from = at.saturating_sub(120);
                    let to = (at + needle.len() + 120).min(haystack.len());
                    found.push(Found {
                        place: place.to_string(),
                        form,
                        value: String::from_utf8_lossy(v).chars().take(40).collect(),
                        context: String::from_utf8_lossy(&haystack[from..to]).into_owned(),
                    });
                }
            }
        }
        found
    }

    /// How many (value, form) needles a scan looks for.
    pub fn needle_count(&self) -> usize {
        self.values.iter().map(|v| Self::needles(v).len()).sum()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    // A literal regex searches with memchr/SIMD: logs of a whole test binary are megabytes.
    regex::bytes::Regex::new(&regex::escape(&String::from_utf8_lossy(needle)))
        .ok()
        .filter(|_| std::str::from_utf8(needle).is_ok())
        .map_or_else(
            || haystack.windows(needle.len()).position(|w| w == needle),
            |re| re.find(haystack).map(|m| m.start()),
        )
}

/// Every log line of this test process (all levels down to debug), captured since [`capture_logs`].
static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(m) = LOGS.get()
            && let Ok(mut v) = m.lock()
        {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs a process-wide tracing subscriber at `debug` (every crate: the operator, the providers, kube, hyper)
/// that keeps every line in memory for [`logs`]; lines at warn and above also go to the test output. Must run
/// before anything else installs one (`syncret_tests::init_tracing` then finds it installed and does nothing).
pub fn capture_logs() {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    if LOGS.set(Mutex::new(Vec::new())).is_err() {
        return;
    }
    let capture = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(|| Capture)
        .with_filter(tracing_subscriber::EnvFilter::new("debug"));
    let echo = tracing_subscriber::fmt::layer()
        .with_test_writer()
        .with_filter(tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::registry().with(capture).with(echo).try_init();
}

/// The captured logs so far.
pub fn logs() -> Vec<u8> {
    LOGS.get()
        .and_then(|m| m.lock().ok().map(|v| v.clone()))
        .unwrap_or_default()
}

/// The leak check a test ends with: none of `values` in the captured debug logs, the Events and syncret statuses
/// of `namespaces` (and all ClusterSecretStores), or `metrics`. Prints what was searched.
pub async fn check(values: &Values, client: &kube::Client, namespaces: &[&str], metrics: &str) -> anyhow::Result<()> {
    let mut texts = cluster_texts(client, namespaces).await?;
    texts.push(("operator logs (debug)".into(), logs()));
    texts.push(("metrics".into(), metrics.as_bytes().to_vec()));
    let bytes: usize = texts.iter().map(|(_, t)| t.len()).sum();
    assert_none(values, &texts)?;
    println!(
        "leak check: {} values ({} needles) in {} places, {} KiB: none found",
        values.len(),
        values.needle_count(),
        texts.len(),
        bytes / 1024
    );
    Ok(())
}

/// Everything a namespace shows about its syncret objects, except their specs and the Secrets themselves:
/// `events.k8s.io/v1` Events, and the `status` of ExternalSecrets, SecretStores, ClusterSecretStores (all) and
/// ClusterExternalSecrets. Returns (place, text) pairs.
pub async fn cluster_texts(client: &kube::Client, namespaces: &[&str]) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for ns in namespaces {
        let events: Api<Event> = Api::namespaced(client.clone(), ns);
        let list = events.list(&ListParams::default()).await?;
        out.push((
            format!("events in {ns} ({})", list.items.len()),
            serde_json::to_vec(&list.items)?,
        ));
        let es: Api<syncret_crds::ExternalSecret> = Api::namespaced(client.clone(), ns);
        let statuses: Vec<_> = es
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .map(|e| e.status)
            .collect();
        out.push((
            format!("ExternalSecret statuses in {ns}"),
            serde_json::to_vec(&statuses)?,
        ));
        let ss: Api<syncret_crds::SecretStore> = Api::namespaced(client.clone(), ns);
        let statuses: Vec<_> = ss
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .map(|e| e.status)
            .collect();
        out.push((format!("SecretStore statuses in {ns}"), serde_json::to_vec(&statuses)?));
    }
    let css: Api<syncret_crds::ClusterSecretStore> = Api::all(client.clone());
    let statuses: Vec<_> = css
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|e| e.status)
        .collect();
    out.push(("ClusterSecretStore statuses".into(), serde_json::to_vec(&statuses)?));
    Ok(out)
}

/// Fails with every finding, if any.
pub fn assert_none(values: &Values, texts: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    let mut all = Vec::new();
    for (place, text) in texts {
        all.extend(values.scan(place, text));
    }
    if !all.is_empty() {
        let mut msg = format!("{} secret value occurrence(s) found:\n", all.len());
        for f in all.iter().take(20) {
            msg.push_str(&format!(
                "- {} ({}): value {:?}…\n    …{}…\n",
                f.place, f.form, f.value, f.context
            ));
        }
        anyhow::bail!(msg);
    }
    Ok(())
}
