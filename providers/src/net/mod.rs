//! The wire to the outside world, bounded by construction. Every HTTP client a provider builds comes from here:
//! [`http::HttpClient`] (reqwest: webhook, Vault, the GCP token endpoints, the SaaS providers' `rest.rs`) and
//! [`connect::http_connector`] (the hyper stacks: the Azure transport, the kubernetes provider's remote apiserver
//! client). Both apply the store's
//! [`egress::Egress`] rules on every connection and hand provider code only bodies read within [`body::Limits`].
pub mod body;
pub mod egress;

#[cfg(any(feature = "azure", feature = "kubernetes"))]
pub mod connect;
#[cfg(any(feature = "webhook", feature = "vault", feature = "gcp", feature = "rest"))]
pub mod http;
#[cfg(any(feature = "webhook", feature = "vault", feature = "gcp", feature = "rest"))]
pub mod tls;
