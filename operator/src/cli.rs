//! Command-line interface of the `syncret` binary.
use std::path::PathBuf;

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
    /// Print the CustomResourceDefinitions as multi-document YAML, or write one file per CRD with --dir.
    Crds {
        /// Write `<plural>.external-secrets.io.yaml` files into this directory instead of printing.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}
