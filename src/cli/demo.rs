//! `tweedie demo`: the README's first command. The paper's finding at CPU size: pairs of small
//! networks on disjoint Fashion-MNIST sets (synthetic disks when the Debian package is not
//! installed) at a memorizing and a generalizing N, paired samples, nearest training images,
//! the train/test gap, model variance and a Jacobian per N (see
//! [`tweedie::experiments::demo`]); ends with `OUT/index.html`. Resumable: run it again to
//! continue.

use super::progress::Terminal;
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use tweedie::data::synthetic::{Disks, Family};
use tweedie::data::DataSource;
use tweedie::experiments::demo::{Config, Demo, DemoDir};
use tweedie::experiments::dir::{self as experiment, Run};
use tweedie::DeviceSpec;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Output folder (OUT/index.html links everything).
    #[arg(long, default_value = "demo")]
    out: PathBuf,
    /// Tiny settings (N = 5 and 100, 150 steps): a smoke test of the pipeline, not a result.
    #[arg(long)]
    quick: bool,
    /// Seed of the splits, the networks, the samples and the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Device: auto, cpu, wgpu[:N], cuda[:N] or tch.
    #[arg(long, default_value = "auto")]
    device: DeviceSpec,
}

/// The data source and a note on it: Fashion-MNIST, or synthetic disks written into the folder.
fn source(a: &DemoArgs) -> Result<(String, String)> {
    match DataSource::FashionMnist.load(None, 0) {
        Ok(_) => Ok((
            "fashion-mnist".into(),
            "Debian's dataset-fashion-mnist".into(),
        )),
        Err(e) => {
            eprintln!("{e}\nfalling back to synthetic disks (28×28)");
            let path = a.out.join("data").join("disks.npy");
            if !path.exists() {
                let family = Family::Disks(Disks {});
                let imgs = family.generate(28, 6000, a.seed)?;
                std::fs::create_dir_all(path.parent().expect("has a parent"))?;
                family
                    .save(&imgs, a.seed, &path)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok((
                path.display().to_string(),
                "synthetic disks: Fashion-MNIST is not installed".into(),
            ))
        }
    }
}

pub fn run(a: DemoArgs) -> Result<()> {
    let dir = DemoDir::new(&a.out);
    std::fs::create_dir_all(dir.root())
        .with_context(|| format!("creating {}", dir.root().display()))?;
    let (data, data_note) = source(&a)?;
    let mut cfg = Config::preset(&data, data_note, a.quick, a.seed, a.device)?;
    let sdir = dir.study();
    if sdir.config().exists() {
        // continuing: the study's own settings
        cfg.study = sdir.resume()?;
        cfg.study.train.device = a.device;
    }
    let progress = Terminal::new();
    let ctx = experiment::Context {
        device: a.device.device()?,
        progress: &progress,
        jobs: None,
    };
    let record = Demo::run(&cfg, &dir, &ctx).with_context(|| {
        format!(
            "fix the cause and run the same command again to continue ({})",
            dir.root().display()
        )
    })?;
    tweedie::report::index::write_demo(&dir, &record)?;
    println!(
        "demo finished in {:.0} s: open {}",
        record.seconds,
        dir.root().join("index.html").display()
    );
    Ok(())
}
