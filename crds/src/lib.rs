//! `external-secrets.io` custom resource types, wire-compatible with External Secrets Operator v1.
//!
//! - [`ExternalSecret`], [`ClusterExternalSecret`], [`SecretStore`], [`ClusterSecretStore`] (`external-secrets.io/v1`)
//!   and [`PushSecret`], [`ClusterPushSecret`] (`external-secrets.io/v1alpha1`), and the generators of
//!   `generators.external-secrets.io/v1alpha1` ([`generator`]), with ESO's field names, enums,
//!   defaults, short names, printer columns and status subresources.
//! - Every spec has `validate() -> Vec<FieldError>` for what the OpenAPI schema cannot express.
//! - [`generate`] renders the CRDs (`deploy/crds/`, `syncret crds`); [`admission`] the ValidatingAdmissionPolicies
//!   that refuse invalid objects at apply, from the same rule table ([`rules`]) as `validate()`.
//!
//! Types mirror the schema: anything the apiserver accepts deserializes (durations, regular expressions and
//! schedules stay strings and have parsing accessors), so one odd object cannot break a watch.
#![forbid(unsafe_code)]

pub mod admission;
pub mod clusterexternalsecret;
pub mod condition;
pub mod duration;
pub mod externalsecret;
pub mod generate;
pub mod generator;
pub mod labels;
pub mod meta;
pub mod provider;
pub mod pushsecret;
pub mod rules;
mod schema;
pub mod secretstore;
pub mod validate;

pub use clusterexternalsecret::{ClusterExternalSecret, ClusterExternalSecretSpec, ClusterExternalSecretStatus};
pub use condition::{
    Condition, ExternalSecretConditionType, ExternalSecretStatusCondition, SecretStoreStatusCondition,
};
pub use externalsecret::{
    ExternalSecret, ExternalSecretCreationPolicy, ExternalSecretData, ExternalSecretDataFromRemoteRef,
    ExternalSecretDataRemoteRef, ExternalSecretDeletionPolicy, ExternalSecretSpec, ExternalSecretStatus,
    ExternalSecretTarget, ExternalSecretTemplate, SecretStoreRef,
};
pub use meta::{CAProvider, SecretKeySelector, ServiceAccountSelector};
pub use provider::{ProviderError, ProviderKind, ProviderSpec, SecretStoreProvider};
pub use pushsecret::{ClusterPushSecret, ClusterPushSecretSpec, PushSecret, PushSecretSpec, PushSecretStatus};
pub use rules::Rule;
pub use secretstore::{
    ClusterSecretStore, ClusterSecretStoreSpec, GenericStore, SecretStore, SecretStoreSpec, SecretStoreStatus,
    StoreKind,
};
pub use validate::FieldError;

/// API group of every kind here.
pub const GROUP: &str = "external-secrets.io";
