//! `tweedie sample`: draw images from a trained denoiser's implicit prior. Writes a PNG grid,
//! `samples.npy`, `trajectory.json` (sampler, seed, σₜ and hₜ per sample) and a σₜ plot.

use super::progress::Terminal;
use super::sampler::SamplerArgs;
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use tweedie::experiments::dir::ExperimentDir;
use tweedie::experiments::sample::{self, Sample};
use tweedie::sampling::ascent::{self, Outcome};
use tweedie::train::record::RunDir;
use tweedie::DeviceSpec;

#[derive(Args, Debug)]
pub struct SampleArgs {
    /// Run folder (from `tweedie train` or `tweedie import`).
    #[arg(long)]
    run: PathBuf,
    /// Image size H (square) or HxW [default: the size the run was trained on; required for
    /// an imported network].
    #[arg(long, value_parser = super::image_size_arg)]
    size: Option<[usize; 2]>,
    /// Number of samples.
    #[arg(long, default_value_t = 64)]
    count: usize,
    /// Seed: sample k starts from the noise of stream (seed, k), whatever the batch size.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    sampler: SamplerArgs,
    /// Euler: number of steps.
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Images denoised together (memory vs speed; does not change the samples).
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Which weights: the moving average when the run keeps one, or the last ones.
    #[arg(long, value_enum, default_value_t = tweedie::train::Weights::Ema)]
    weights: tweedie::train::Weights,
    /// Device: auto, cpu, wgpu[:N], cuda[:N] or tch.
    #[arg(long, default_value = "auto")]
    device: DeviceSpec,
}

pub fn run(a: SampleArgs) -> Result<()> {
    let cfg = sample::Config {
        sampler: a.sampler.sampler(a.steps, a.batch),
        count: a.count,
        seed: a.seed,
        size: a.size,
        weights: a.weights,
    };
    cfg.validate()?;
    let run = RunDir::new(&a.run);
    let device = a.device.device()?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let drawn = sample::run(&cfg, &run, &device, &Terminal::new())?;
    let (record, out) = (&drawn.record, &drawn.samples);
    let trajectories = &out.trajectories;
    let shape = out.images.image_shape();
    tweedie::data::write_npy(&out.images, &a.out.join("samples.npy"))?;
    ExperimentDir::<Sample>::new(&a.out).write_record(record)?;
    tweedie::report::samples::write(&a.out, &out.images, trajectories)?;
    if let Some(snaps) = ascent::snapshots(trajectories, shape) {
        tweedie::data::write_npy(&snaps, &a.out.join("snapshots.npy"))?;
    }
    if !trajectories.is_empty() {
        let steps: Vec<usize> = trajectories.iter().map(|t| t.steps).collect();
        println!(
            "{} samples, {}–{} steps (mean {:.0})",
            a.count,
            steps.iter().min().unwrap_or(&0),
            steps.iter().max().unwrap_or(&0),
            steps.iter().sum::<usize>() as f64 / steps.len() as f64
        );
    }
    let ascent = &a.sampler.ascent;
    let (step_cap, stalled, diverged) = (record.step_cap, record.stalled, record.diverged);
    if step_cap > 0 {
        eprintln!(
            "warning: {step_cap} of {} samples hit --max-steps {} before σₜ fell below --sigma-final {}; raise --max-steps or --h0, or train the network longer at low noise",
            a.count, ascent.max_steps, ascent.sigma_final
        );
    }
    if stalled > 0 {
        let highest = trajectories
            .iter()
            .filter(|t| t.outcome == Outcome::Stalled)
            .map(|t| t.sigma.iter().copied().fold(f32::INFINITY, f32::min))
            .fold(0.0f32, f32::max);
        eprintln!(
            "warning: {stalled} of {} samples stalled before σₜ fell below --sigma-final {} (lowest σₜ reached: up to {highest:.3}); they are the denoised images at their lowest σₜ. The network cannot denoise below that level: raise --sigma-final or train longer",
            a.count, ascent.sigma_final
        );
    }
    if diverged > 0 {
        eprintln!(
            "warning: {diverged} of {} samples diverged (σₜ > 10·σ₀); the network is probably used outside its training noise range: lower --sigma0 or train with a larger --sigma-max",
            a.count
        );
    }
    println!(
        "wrote {}/samples.png, samples.npy, trajectory.json",
        a.out.display()
    );
    Ok(())
}
