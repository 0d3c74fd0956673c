//! Command-line interface of the `syncret` binary.
use clap::{Parser, Subcommand};

/// Keeps Kubernetes Secrets in sync with external secret stores (External Secrets Operator v1 compatible).
#[derive(Debug, Parser)]
#[command(name = "syncret", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the CustomResourceDefinitions as YAML.
    Crds,
}
