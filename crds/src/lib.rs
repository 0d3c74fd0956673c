//! `external-secrets.io` custom resource types, wire-compatible with External Secrets Operator v1.
#![forbid(unsafe_code)]
