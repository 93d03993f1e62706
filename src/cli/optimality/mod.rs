//! `tweedie optimality`: networks against the optimum on families where it is known (see
//! [`tweedie::experiments::optimality`]); trains what is missing, measures, writes the report.

mod config;

use super::progress::Terminal;
use super::train::Steps;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use tweedie::data::synthetic::{Boundary, Construction};
use tweedie::experiments::dir::{self as experiment, Run};
use tweedie::experiments::optimality::{Optimality, OptimalityDir};
use tweedie::nn::Arch;
use tweedie::train::{LossWeighting, SigmaSampling};
use tweedie::DeviceSpec;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FamilyName {
    /// Gaussian fields, spectrum ∝ 1/|f|^γ (optimum: the Wiener filter).
    Gaussian,
    /// C^α images (optimal MSE ∝ σ^(2α/(α+1))).
    Calpha,
    /// Disks, a 5-dimensional manifold (optimum: numerical MMSE).
    Disks,
    /// A data set against the same set with shuffled pixels.
    Shuffled,
}

#[derive(Args, Debug)]
pub struct OptimalityArgs {
    /// The family [required unless --resume].
    #[arg(long, value_enum)]
    family: Option<FamilyName>,
    /// C^α: regularities α, comma-separated (one network each).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,5")]
    alphas: Vec<f64>,
    /// C^α: Gaussian processes with power-law spectra and area-sampled edges, or the first
    /// construction's B-spline sums with hard pixel edges (see `tweedie data synth --help`).
    #[arg(long, value_enum, default_value_t = Construction::Spectral)]
    construction: Construction,
    /// Gaussian: spectral exponent γ.
    #[arg(long, default_value_t = 2.0)]
    gamma: f64,
    /// Gaussian: open edges (default) or periodic ones (see `tweedie data synth --help`).
    #[arg(long, value_enum, default_value_t = Boundary::Open)]
    boundary: Boundary,
    /// Shuffled control: the data set (as for `tweedie train --data`).
    #[arg(long, default_value = "fashion-mnist")]
    data: String,
    /// Side of the synthetic images.
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Training images per network.
    #[arg(long, default_value_t = 10000)]
    train_images: usize,
    /// Noise levels of the MSE measurements.
    #[arg(long, value_delimiter = ',', value_parser = super::sigma_arg,
          default_value = "1/255,0.01,0.02,0.05,0.1,0.2,0.4")]
    sigmas: Vec<f32>,
    /// Held-out images per σ.
    #[arg(long, default_value_t = 256)]
    eval_count: usize,
    /// Noise levels at which the Jacobian is opened [default: 0.1; disks: 0.02,0.05,0.1,0.2,0.4].
    #[arg(long, value_delimiter = ',', value_parser = super::sigma_arg)]
    jacobian_sigmas: Option<Vec<f32>>,
    /// Eigenvectors kept and compared.
    #[arg(long, default_value_t = 32)]
    top: usize,
    /// C^α: the σ range of the slope fit, `lo,hi`.
    #[arg(long, value_delimiter = ',', value_parser = super::sigma_arg, default_value = "0.02,0.2")]
    fit_range: Vec<f32>,
    /// Disks: importance samples per image of the MMSE oracle.
    #[arg(long, default_value_t = 2000)]
    oracle_samples: usize,
    /// Architecture.
    #[arg(long, value_enum, default_value_t = Arch::BfUnet)]
    arch: Arch,
    /// BF-UNet scales.
    #[arg(long, default_value_t = 2)]
    blocks: usize,
    /// Feature channels.
    #[arg(long, default_value_t = 16)]
    channels: usize,
    /// BF-CNN layers.
    #[arg(long, default_value_t = 20)]
    layers: usize,
    /// Optimizer steps per network: a number, or `auto` (the default) to train each network
    /// until its validation losses stop improving, at most 20000 steps (`auto:CAP`).
    #[arg(long, value_parser = super::train::steps_arg)]
    steps: Option<Steps>,
    /// Images per step.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Initial Adam learning rate (the rest of the recipe is `tweedie train`'s default).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Largest training noise level (covers the measured σ).
    #[arg(long, default_value = "0.5", value_parser = super::sigma_arg)]
    sigma_max: f32,
    /// How each training image's σ is drawn (as `tweedie train --sigma-sampling`).
    #[arg(long, value_enum, default_value_t = SigmaSampling::Mixture)]
    sigma_sampling: SigmaSampling,
    /// Weight of each image's squared error by its noise level (as `tweedie train
    /// --loss-weighting`).
    #[arg(long, value_enum, default_value_t = LossWeighting::InvSigma)]
    loss_weighting: LossWeighting,
    /// Keep a moving average of the weights with this decay and measure it (0: none).
    #[arg(long, default_value_t = 0.0)]
    ema: f64,
    /// Tiny settings (16×16, 256 images, 80 steps of an 8-channel network, unless --steps
    /// says otherwise): a smoke test of the whole pipeline in seconds, not a result.
    #[arg(long)]
    quick: bool,
    /// Seed of data, networks, noise and oracle draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Device: auto, cpu, wgpu[:N], cuda[:N] or tch.
    #[arg(long, default_value = "auto")]
    device: DeviceSpec,
    /// Study folder.
    #[arg(long)]
    out: PathBuf,
    /// Continue the study in --out with its own configuration: finished networks are kept.
    #[arg(long)]
    resume: bool,
}

pub fn run(a: OptimalityArgs) -> Result<()> {
    let dir = OptimalityDir::new(&a.out);
    let cfg = config::config(&a, &dir)?;
    cfg.validate()?;
    let progress = Terminal::new();
    let start = std::time::Instant::now();
    let ctx = experiment::Context {
        device: cfg.train.device.device()?,
        progress: &progress,
        jobs: None,
    };
    let record = Optimality::run(&cfg, &dir, &ctx)?;
    tweedie::report::optimality::write(&dir, &record)
        .with_context(|| format!("writing the report of {}", dir.root().display()))?;
    print!("{}", tweedie::report::optimality::summary(&record));
    println!(
        "{:.0} s; study folder: {} (optimality.json, report.html)",
        start.elapsed().as_secs_f64(),
        dir.root().display()
    );
    Ok(())
}
