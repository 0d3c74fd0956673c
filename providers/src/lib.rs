//! Secret store backends for syncret.
//!
//! One trait ([`SecretsClient`]) every backend implements, a [`Provider`] factory per backend that builds an
//! authenticated client from a store spec, the [`ClientCache`] that shares those clients across reconciles,
//! credential resolution with ESO's namespace rules, and the property/extract rules every backend shares.
#![forbid(unsafe_code)]

pub mod cache;
pub mod client;
pub mod credentials;
pub mod error;
#[cfg(feature = "generators")]
pub mod generators;
pub mod lease;
pub mod net;
pub mod policy;
pub mod property;
pub mod registry;
pub mod value;

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "azure")]
pub mod azure;
#[cfg(feature = "bitwarden")]
pub mod bitwarden;
#[cfg(feature = "doppler")]
pub mod doppler;
#[cfg(feature = "fake")]
pub mod fake;
#[cfg(feature = "gcp")]
pub mod gcp;
#[cfg(feature = "gitlab")]
pub mod gitlab;
#[cfg(feature = "infisical")]
pub mod infisical;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;
#[cfg(feature = "onepassword")]
pub mod onepassword;
#[cfg(feature = "rest")]
pub mod rest;
#[cfg(feature = "sops")]
pub mod sops;
#[cfg(feature = "vault")]
pub mod vault;
#[cfg(feature = "webhook")]
pub mod webhook;

pub use cache::{CacheKey, ClientCache};
pub use client::{
    CallObserver, Capabilities, FindQuery, NoopObserver, PushRef, RemoteKey, SecretsClient, Validation, observed,
};
pub use credentials::{Credentials, StoreScope};
pub use error::{ProviderError, Result};
pub use lease::Lease;
pub use policy::TenantPolicy;
pub use registry::{Provider, ProviderContext, Registry, StoreInfo};
pub use value::{CustomValue, RemoteValue, SecretValue, Select, Unloggable};
