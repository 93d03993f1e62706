//! `tweedie train`: flags → [`TrainConfig`] ([`config`]) → [`tweedie::train::train`] → run
//! folder + report.

mod config;

pub use config::steps_arg;
pub use tweedie::train::{Steps, AUTO_CAP};

use super::progress::Terminal;
use super::recipe::RecipeArgs;
use super::sigma_arg;
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use tweedie::data::Split;
use tweedie::nn::Arch;
use tweedie::train::record::RunDir;
use tweedie::train::{OnNan, Session, StopRule, TrainConfig, TrainingData};
use tweedie::DeviceSpec;

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Data: `fashion-mnist`, a folder of images or of IDX files, an IDX file, or a .npy array.
    /// Not needed with --resume.
    #[arg(long)]
    pub data: Option<String>,
    /// Image folders: convert to grayscale.
    #[arg(long)]
    pub gray: bool,
    /// Image folders: centre-crop and resize to SIZE×SIZE.
    #[arg(long)]
    pub size: Option<usize>,
    /// Held-out test images for sources without a test file [default: a tenth, at most 1000].
    #[arg(long)]
    pub test_size: Option<usize>,
    /// Training-set size N (two disjoint sets `a` and `b` of N exist) [default: the whole pool].
    #[arg(long)]
    pub train_size: Option<usize>,
    /// Which of the two disjoint training sets.
    #[arg(long, value_enum, default_value_t = Split::A)]
    pub split: Split,
    /// Seed of the permutation the disjoint sets are dealt from (keep it fixed across a study).
    #[arg(long, default_value_t = 0)]
    pub split_seed: u64,
    /// De-duplicate: drop images whose correlation with a kept one exceeds this (e.g. 0.95).
    #[arg(long)]
    pub dedup: Option<f32>,
    /// Rearrange every image's pixels by one fixed permutation drawn from this seed (a control
    /// that keeps per-pixel statistics and destroys geometry).
    #[arg(long)]
    pub shuffle_pixels: Option<u64>,
    /// Architecture.
    #[arg(long, value_enum, default_value_t = Arch::BfUnet)]
    pub arch: Arch,
    /// BF-UNet: number of scales (3 × 64 channels is the paper's 7.6 M-parameter network).
    #[arg(long, default_value_t = 3)]
    pub blocks: usize,
    /// Feature channels (BF-UNet: at the first scale, doubling at each scale).
    #[arg(long, default_value_t = 64)]
    pub channels: usize,
    /// BF-CNN: number of convolution layers.
    #[arg(long, default_value_t = 20)]
    pub layers: usize,
    /// Optimizer steps: a number, or `auto` to train until the validation losses stop improving
    /// (at most 20000 steps; `auto:CAP` sets the cap) [default: 2000 for train, auto for
    /// generalization; with --resume, the run's own].
    #[arg(long, value_parser = steps_arg)]
    pub steps: Option<Steps>,
    /// --steps auto: a loss improves when it falls by more than this fraction of its best.
    #[arg(long, default_value_t = StopRule::default().min_improvement)]
    pub stop_min_improvement: f64,
    /// --steps auto: steps without improvement of the held-out or the training-image loss
    /// that make a plateau.
    #[arg(long, default_value_t = StopRule::default().patience)]
    pub stop_patience: u64,
    /// --steps auto: learning-rate halvings (one per plateau) before a plateau stops the run.
    #[arg(long, default_value_t = StopRule::default().decays)]
    pub stop_decays: u32,
    /// Images per step.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    #[command(flatten)]
    pub recipe: RecipeArgs,
    /// Seed of initialisation, batch order and noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// When the loss becomes NaN or infinite: stop (the last checkpoint is intact), or roll back
    /// to the last checkpoint, halve the learning rate and go on (at most 5 times).
    #[arg(long, value_enum, default_value_t = OnNan::Stop)]
    pub on_nan: OnNan,
    /// Write a checkpoint every this many steps.
    #[arg(long, default_value_t = 250)]
    pub checkpoint_every: u64,
    /// Validate and log every this many steps [default: steps/20; with --steps auto, a tenth of
    /// the stopping rule's patience].
    #[arg(long)]
    pub log_every: Option<u64>,
    /// Validation noise levels, comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = sigma_arg, default_value = "15/255,50/255,100/255")]
    pub val_sigmas: Vec<f32>,
    /// Held-out images used for validation.
    #[arg(long, default_value_t = 64)]
    pub val_count: usize,
    /// Repeat small training sets until an epoch holds this many images.
    #[arg(long, default_value_t = 1000)]
    pub min_epoch: usize,
    /// Device: auto, cpu, wgpu[:N], cuda[:N] or tch.
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    /// Run folder to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue the run in --out from its checkpoint (with its own config; --steps may extend it).
    #[arg(long)]
    pub resume: bool,
    /// Stop after this step, with a checkpoint, as if interrupted (the plan stays over --steps;
    /// --resume continues it and ends exactly where an uninterrupted run would).
    #[arg(long)]
    pub stop_at: Option<u64>,
    /// Print the resolved configuration and exit.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: TrainArgs) -> Result<()> {
    let (cfg, data) = args.config()?;
    cfg.validate()?;
    if args.dry_run {
        println!("{}", serde_json::to_string_pretty(&cfg)?);
        return Ok(());
    }
    let session = Session {
        resume: args.resume,
        stop_at: args.stop_at,
    };
    train_and_report(&cfg, data, &RunDir::new(&args.out), session)
}

/// Trains (on `data` when already resolved from `cfg.data`), then writes the run's figures
/// and report and prints a summary.
pub fn train_and_report(
    cfg: &TrainConfig,
    data: Option<TrainingData>,
    run: &RunDir,
    session: Session,
) -> Result<()> {
    let progress = Terminal::new();
    let report = match data {
        Some(data) => tweedie::train::train_on(cfg, data, run, session, &progress)?,
        None => tweedie::train::train(cfg, run, session, &progress)?,
    };
    tweedie::report::run::write(run)
        .with_context(|| format!("writing the report of {}", run.root().display()))?;
    if report.resumed_from > 0 {
        println!("resumed at step {}", report.resumed_from);
    }
    println!(
        "trained {} steps ({:.1} images/s); final loss {:.4}",
        report.steps, report.images_per_second, report.final_loss
    );
    for r in &report.validation {
        println!(
            "  σ = {:.4}: PSNR {:.2} dB (noisy input {:.2} dB)",
            r.sigma, r.psnr, r.input_psnr
        );
    }
    match report.stopped {
        Some(s) if s.reason == tweedie::train::StopReason::Converged => println!(
            "converged at step {} (cap {}; learning rate halved {} times)",
            s.step, s.cap, s.decays
        ),
        Some(s) if s.reason == tweedie::train::StopReason::Cap => println!(
            "reached the cap of {} steps before the losses settled: raise it with --resume --steps auto:CAP",
            s.cap
        ),
        _ => {}
    }
    if report.stopped.is_none() {
        println!(
            "stopped at step {} of {}: continue with tweedie train --resume --out {}",
            report.steps,
            cfg.steps,
            run.root().display()
        );
    }
    println!("run folder: {} (report.html)", run.root().display());
    Ok(())
}
