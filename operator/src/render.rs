//! `syncret render`: the Secret an ExternalSecret would produce, computed locally with the same pure code the
//! controller uses (no cluster needed).
use crate::cli::RenderArgs;

/// Renders and returns the Secret as YAML.
pub fn run(_args: &RenderArgs) -> anyhow::Result<String> {
    anyhow::bail!("syncret render is not implemented yet")
}
