//! `tweedie demo`: the small end-to-end run of the README's first command. Trains a small
//! BF-UNet on 1000 Fashion-MNIST images (or on synthetic disks when the Debian package is not
//! installed), evaluates it on training and held-out images, draws 16 samples from its prior,
//! and writes `report.html`.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use tweedie::data::synthetic::{Disks, Family};
use tweedie::data::{DataSource, SplitSpec};
use tweedie::nn::{Arch, NetConfig};
use tweedie::run::RunDir;
use tweedie::train::{DataConfig, LossWeighting, LrSchedule, Session, SigmaSampling, TrainConfig};
use tweedie::DeviceSpec;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Output folder (the run is written to OUT/run).
    #[arg(long, default_value = "demo")]
    out: PathBuf,
    /// Training steps.
    #[arg(long, default_value_t = 800)]
    steps: u64,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Device: auto, cpu, cuda[:N] or tch.
    #[arg(long, default_value = "auto")]
    device: DeviceSpec,
}

pub fn run(a: DemoArgs) -> Result<()> {
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let source = match DataSource::FashionMnist.load(None, 0) {
        Ok(_) => "fashion-mnist".to_string(),
        Err(e) => {
            eprintln!("{e}\nfalling back to synthetic disks (32×32)");
            let path = a.out.join("disks.npy");
            let imgs = Family::Disks(Disks {}).generate(32, 3000, a.seed)?;
            tweedie::data::write_npy(&imgs, &path)?;
            path.display().to_string()
        }
    };
    let cfg = TrainConfig {
        data: DataConfig {
            gray: true,
            split: SplitSpec {
                train_size: Some(1000),
                ..DataConfig::new("").split
            },
            ..DataConfig::new(source)
        },
        net: NetConfig {
            arch: Arch::BfUnet,
            image_channels: 1,
            channels: 16,
            blocks: 2,
            layers: 20,
        },
        steps: a.steps,
        batch: 32,
        lr: 1e-3,
        lr_halve_every: (a.steps / 3).max(1),
        lr_schedule: LrSchedule::Cosine,
        lr_warmup: a.steps / 50,
        sigma_sampling: SigmaSampling::Mixture,
        ema: None,
        sigma_min: 0.0,
        // the whole range the sampler starts from (σ₀ = 1): trained only up to 0.5, the
        // 1/σ-weighted network drew noise textures instead of garments
        sigma_max: 1.0,
        loss_weighting: LossWeighting::InvSigma,
        seed: a.seed,
        checkpoint_every: 200,
        log_every: (a.steps / 10).max(1),
        val_sigmas: vec![15.0 / 255.0, 50.0 / 255.0, 100.0 / 255.0],
        val_count: 64,
        min_epoch: 1000,
        device: a.device,
    };
    let run = RunDir::new(a.out.join("run"));
    let resume = run.config().exists();
    super::train::train_and_report(&cfg, None, &run, Session::resuming(resume))?;
    super::eval::run(super::eval::EvalArgs::for_run(
        run.root().to_path_buf(),
        a.device,
    ))?;
    super::sample::run(super::sample::SampleArgs::for_run(
        run.root().to_path_buf(),
        run.file("samples"),
        16,
        // the demo's small, briefly trained network cannot denoise much below σ ≈ 0.011
        // (with σ_L = 0.01, 1 of its 16 samples stalls there), so it stops a little earlier
        (1.0, 0.02),
        a.seed,
        a.device,
    ))?;
    tweedie::report::run::write(&run)?;
    println!("demo finished: open {}", run.file("report.html").display());
    Ok(())
}
