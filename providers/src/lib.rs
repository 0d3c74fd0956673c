//! Secret store backends for syncret.
//!
//! One trait ([`SecretsClient`]) every backend implements, a [`Provider`] factory per backend that builds an
//! authenticated client from a store spec, the [`ClientCache`] that shares those clients across reconciles,
//! and the property/extract rules every backend shares.
#![forbid(unsafe_code)]

pub mod cache;
pub mod client;
pub mod error;
pub mod property;
pub mod value;

pub use cache::{CacheKey, ClientCache};
pub use client::{
    CallObserver, Capabilities, FindQuery, NoopObserver, PushRef, RemoteKey, SecretsClient, Validation, observed,
};
pub use error::{ProviderError, Result};
pub use value::{SecretValue, Unloggable};
