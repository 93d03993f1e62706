//! `tweedie report PATH`: redraws the page of any folder the tool writes from its records alone
//! (see [`tweedie::report::index::rebuild`]).

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// A run, study, Jacobian, optimality or demo folder, or a folder holding several.
    path: PathBuf,
}

pub fn run(a: ReportArgs) -> Result<()> {
    if !a.path.is_dir() {
        bail!("{}: no such folder", a.path.display());
    }
    let pages = tweedie::report::index::rebuild(&a.path)
        .with_context(|| format!("rebuilding the pages of {}", a.path.display()))?;
    if pages.is_empty() {
        bail!(
            "{} holds no tweedie records (config.json, study.json, jacobian.json, optimality.json or demo.json), nor do the folders in it",
            a.path.display()
        );
    }
    for (page, kind) in &pages {
        println!(
            "{:<11} {}",
            format!("{kind:?}").to_lowercase(),
            a.path.join(page).display()
        );
    }
    if tweedie::report::index::Kind::of(&a.path).is_none() {
        println!("index      {}", a.path.join("index.html").display());
    }
    Ok(())
}
