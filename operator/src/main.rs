use std::io::Write as _;

use clap::Parser;
use syncret::cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crds { dir: Some(dir) }) => {
            for path in syncret_crds::generate::write_dir(&dir)? {
                eprintln!("wrote {}", path.display());
            }
        }
        Some(Command::Crds { dir: None }) => {
            std::io::stdout().write_all(syncret_crds::generate::multi_document()?.as_bytes())?;
        }
        None => {}
    }
    Ok(())
}
