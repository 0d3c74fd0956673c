//! Reading what `syncret check` looks at from a cluster: every object of ESO's API groups (found by
//! discovery, so ESO's kinds that syncret does not serve are seen too), and the facts around them — the
//! metadata of the Secrets in the namespaces that have ExternalSecrets, Namespaces (their finalizers) and the
//! `external-secrets.io` CRDs. Metadata only for Secrets: the check never reads a Secret's data.
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, ObjectList};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::PartialObjectMeta;
use kube::discovery::{Discovery, Scope};
use kube::{Client, Config, Resource};
use serde_json::Value;

use super::objects::GENERATORS_GROUP;
use super::{Facts, Input, Skipped};
use crate::cli::CheckArgs;

/// Objects per list request.
const PAGE: u32 = 500;
/// Per request.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the cluster could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("reading the kubeconfig: {0}")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    #[error("no usable kubeconfig or in-cluster configuration: {0}")]
    Infer(#[source] kube::config::InferConfigError),
    #[error("creating the client: {0}")]
    Client(#[source] kube::Error),
    #[error("discovering the {GENERATORS_GROUP} and external-secrets.io APIs: {0}")]
    Discovery(#[source] kube::Error),
    #[error("listing {what}: {source}")]
    List {
        what: String,
        #[source]
        source: kube::Error,
    },
}

/// What was read.
#[derive(Debug, Default)]
pub struct Read {
    pub inputs: Vec<Input>,
    pub facts: Facts,
    /// What could not be read (e.g. forbidden), said in the report.
    pub skipped: Vec<Skipped>,
}

async fn client(args: &CheckArgs) -> Result<Client, ClusterError> {
    let mut config = if args.kubeconfig.is_some() || args.context.is_some() {
        let kc = match &args.kubeconfig {
            Some(p) => Kubeconfig::read_from(p),
            None => Kubeconfig::read(),
        }
        .map_err(ClusterError::Kubeconfig)?;
        let opts = KubeConfigOptions {
            context: args.context.clone(),
            ..Default::default()
        };
        Config::from_custom_kubeconfig(kc, &opts)
            .await
            .map_err(ClusterError::Kubeconfig)?
    } else {
        Config::infer().await.map_err(ClusterError::Infer)?
    };
    config.read_timeout = Some(READ_TIMEOUT);
    config.connect_timeout = Some(Duration::from_secs(10));
    Client::try_from(config).map_err(ClusterError::Client)
}

/// Every page of a list.
async fn list_all<K, F, Fut>(what: &str, mut page: F) -> Result<Vec<K>, ClusterError>
where
    F: FnMut(ListParams) -> Fut,
    Fut: std::future::Future<Output = Result<ObjectList<K>, kube::Error>>,
    K: Clone,
{
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(PAGE);
        if let Some(t) = token.take() {
            lp = lp.continue_token(&t);
        }
        let list = page(lp).await.map_err(|source| ClusterError::List {
            what: what.to_string(),
            source,
        })?;
        out.extend(list.items);
        match list.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => token = Some(c),
            None => return Ok(out),
        }
    }
}

fn forbidden(e: &ClusterError) -> bool {
    matches!(e, ClusterError::List { source: kube::Error::Api(s), .. } if s.code == 403 || s.code == 404)
}

/// Reads the cluster of `args` (`--kubeconfig`, `--context`, `--namespace`).
pub async fn read(args: &CheckArgs) -> Result<Read, ClusterError> {
    let client = client(args).await?;
    let ns = Some(args.namespace.clone()).filter(|n| !n.is_empty());
    let mut read = Read::default();
    let discovery = Discovery::new(client.clone())
        .filter(&[syncret_crds::GROUP, GENERATORS_GROUP])
        .run()
        .await
        .map_err(ClusterError::Discovery)?;
    let mut es_namespaces = BTreeSet::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            let api: Api<DynamicObject> = match (&caps.scope, &ns) {
                (Scope::Namespaced, Some(n)) => Api::namespaced_with(client.clone(), n, &ar),
                _ => Api::all_with(client.clone(), &ar),
            };
            let what = format!("{}.{}", ar.plural, ar.group);
            let items = match list_all(&what, |lp| {
                let api = api.clone();
                async move { api.list(&lp).await }
            })
            .await
            {
                Ok(items) => items,
                Err(e) if forbidden(&e) => {
                    read.skipped.push(Skipped {
                        source: "cluster".into(),
                        reason: e.to_string(),
                    });
                    continue;
                }
                Err(e) => return Err(e),
            };
            for mut obj in items {
                obj.metadata.managed_fields = None;
                if ar.kind == "ExternalSecret"
                    && let Some(n) = &obj.metadata.namespace
                {
                    es_namespaces.insert(n.clone());
                }
                let name = obj.metadata.name.clone().unwrap_or_default();
                let namespace = obj.metadata.namespace.clone();
                let mut value = serde_json::to_value(&obj).unwrap_or(Value::Null);
                if let Some(o) = value.as_object_mut() {
                    o.insert("apiVersion".into(), ar.api_version.clone().into());
                    o.insert("kind".into(), ar.kind.clone().into());
                }
                let source = match namespace {
                    Some(n) => format!("cluster {}/{n}/{name}", ar.plural),
                    None => format!("cluster {}/{name}", ar.plural),
                };
                read.inputs.push(Input { source, value });
            }
        }
    }
    // Secrets (metadata only) where ExternalSecrets write, for the adoption rules.
    let mut secrets = BTreeMap::new();
    for n in &es_namespaces {
        let api: Api<Secret> = Api::namespaced(client.clone(), n);
        match list_all(&format!("secrets in {n}"), |lp| {
            let api = api.clone();
            async move { api.list_metadata(&lp).await }
        })
        .await
        {
            Ok(items) => {
                for s in items {
                    let s: PartialObjectMeta<Secret> = s;
                    let meta = s.meta().clone();
                    secrets.insert((n.clone(), meta.name.clone().unwrap_or_default()), meta);
                }
            }
            Err(e) if forbidden(&e) => read.skipped.push(Skipped {
                source: "cluster".into(),
                reason: format!("{e} (existing Secrets not judged for adoption)"),
            }),
            Err(e) => return Err(e),
        }
    }
    read.facts.secrets = Some(secrets);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    match list_all("namespaces", |lp| {
        let api = namespaces.clone();
        async move { api.list_metadata(&lp).await }
    })
    .await
    {
        Ok(items) => read.facts.namespaces = items.into_iter().map(|n| n.metadata).collect(),
        Err(e) if forbidden(&e) => read.skipped.push(Skipped {
            source: "cluster".into(),
            reason: e.to_string(),
        }),
        Err(e) => return Err(e),
    }
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    match list_all("customresourcedefinitions", |lp| {
        let api = crds.clone();
        async move { api.list(&lp).await }
    })
    .await
    {
        Ok(items) => {
            read.facts.crds = items
                .into_iter()
                .filter(|c| c.spec.group == syncret_crds::GROUP)
                .map(|mut c| {
                    // The schemas are large and not needed.
                    for v in &mut c.spec.versions {
                        v.schema = None;
                    }
                    c.metadata.managed_fields = None;
                    c
                })
                .collect();
        }
        Err(e) if forbidden(&e) => read.skipped.push(Skipped {
            source: "cluster".into(),
            reason: e.to_string(),
        }),
        Err(e) => return Err(e),
    }
    Ok(read)
}
