//! `tweedie sample`: draw images from a trained denoiser's implicit prior. Writes a PNG grid,
//! `samples.npy`, `trajectory.json` (parameters, seed, σₜ and hₜ per sample) and a σₜ plot.

use super::progress::Terminal;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;
use std::path::PathBuf;
use tweedie::data::Images;
use tweedie::report::grid::{save_grid, Scaling};
use tweedie::report::plot::{save_line_plot, LinePlot, Scale, Series};
use tweedie::run::RunDir;
use tweedie::sampling::ascent::{self, AscentParams, Outcome, Trajectory};
use tweedie::sampling::euler::{self, EulerParams};
use tweedie::DeviceSpec;

#[derive(ValueEnum, Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sampler {
    /// Stochastic coarse-to-fine gradient ascent (Kadkhodaie & Simoncelli 2021).
    Ascent,
    /// Deterministic Euler steps of the probability-flow ODE on a geometric σ schedule.
    Euler,
}

/// Ascent parameters shared by `sample` and `restore`.
#[derive(Args, Debug, Clone)]
pub struct AscentArgs {
    /// Initial step size h₀.
    #[arg(long, default_value_t = 0.01)]
    pub h0: f64,
    /// Fraction β of the noise removed per step (smaller: more stochastic, more steps).
    #[arg(long, default_value_t = 0.1)]
    pub beta: f64,
    /// Initial noise level σ₀.
    #[arg(long, default_value_t = 1.0)]
    pub sigma0: f64,
    /// Stop when the estimated noise level falls below this.
    #[arg(long, default_value_t = 0.01)]
    pub sigma_final: f64,
    /// Step cap.
    #[arg(long, default_value_t = 3000)]
    pub max_steps: usize,
    /// Keep y every this many steps in snapshots.npy (0: never).
    #[arg(long, default_value_t = 0)]
    pub snapshot_every: usize,
}

impl AscentArgs {
    pub fn params(&self, batch: usize) -> AscentParams {
        AscentParams {
            h0: self.h0,
            beta: self.beta,
            sigma0: self.sigma0,
            sigma_final: self.sigma_final,
            init_mean: 0.5,
            max_steps: self.max_steps,
            snapshot_every: self.snapshot_every,
            batch,
        }
    }
}

#[derive(Args, Debug)]
pub struct SampleArgs {
    /// Run folder (from `tweedie train`).
    #[arg(long)]
    run: PathBuf,
    /// Number of samples.
    #[arg(long, default_value_t = 64)]
    count: usize,
    /// Seed: sample k starts from the noise of stream (seed, k), whatever the batch size.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Sampler.
    #[arg(long, value_enum, default_value_t = Sampler::Ascent)]
    sampler: Sampler,
    #[command(flatten)]
    ascent: AscentArgs,
    /// Euler: number of steps.
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Images denoised together (memory vs speed; does not change the samples).
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Device: auto, cpu, cuda[:N] or tch.
    #[arg(long, default_value = "auto")]
    device: DeviceSpec,
}

#[derive(Serialize)]
struct TrajectoryFile<'a> {
    run: String,
    sampler: Sampler,
    seed: u64,
    count: usize,
    ascent: Option<&'a AscentParams>,
    euler: Option<&'a EulerParams>,
    step_cap: usize,
    diverged: usize,
    stalled: usize,
    trajectories: &'a [Trajectory],
}

impl SampleArgs {
    /// Default ascent sampling of `count` images from a run into `out`, from noise level
    /// `sigma0` down to `sigma_final` (used by the demo).
    pub fn for_run(
        run: PathBuf,
        out: PathBuf,
        count: usize,
        (sigma0, sigma_final): (f64, f64),
        seed: u64,
        device: DeviceSpec,
    ) -> Self {
        let defaults: Self = super::defaults_with(&["--run", "-", "--out", "-"]);
        Self {
            run,
            count,
            seed,
            out,
            sampler: Sampler::Ascent,
            ascent: AscentArgs {
                sigma0,
                sigma_final,
                ..defaults.ascent
            },
            device,
            ..defaults
        }
    }
}

pub fn run(a: SampleArgs) -> Result<()> {
    if a.count == 0 {
        anyhow::bail!("--count must be at least 1");
    }
    let run = RunDir::new(&a.run);
    let device = a.device.device()?;
    let (denoiser, record) = tweedie::train::load_denoiser(&run, &device)?;
    let shape = record.image_shape;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let progress = Terminal::new();
    let ascent_params = a.ascent.params(a.batch);
    let euler_params = EulerParams {
        steps: a.steps,
        sigma_max: a.ascent.sigma0,
        sigma_min: a.ascent.sigma_final,
        init_mean: 0.5,
        batch: a.batch,
    };
    let (images, trajectories) = match a.sampler {
        Sampler::Ascent => {
            let out = ascent::sample(
                &denoiser,
                shape,
                a.count,
                0,
                &ascent_params,
                a.seed,
                &progress,
            )?;
            (out.images, out.trajectories)
        }
        Sampler::Euler => (
            euler::sample(
                &denoiser,
                shape,
                a.count,
                0,
                &euler_params,
                a.seed,
                &progress,
            )?,
            Vec::new(),
        ),
    };
    let count_of = |o: Outcome| trajectories.iter().filter(|t| t.outcome == o).count();
    let (step_cap, diverged) = (count_of(Outcome::StepCap), count_of(Outcome::Diverged));
    let stalled = count_of(Outcome::Stalled);
    tweedie::data::write_npy(&images, &a.out.join("samples.npy"))?;
    let cols = (a.count as f64).sqrt().ceil() as usize;
    save_grid(
        &images,
        cols,
        (96 / shape[1]).max(1),
        Scaling::Clamp,
        &a.out.join("samples.png"),
    )?;
    let file = TrajectoryFile {
        run: run.root().display().to_string(),
        sampler: a.sampler,
        seed: a.seed,
        count: a.count,
        ascent: matches!(a.sampler, Sampler::Ascent).then_some(&ascent_params),
        euler: matches!(a.sampler, Sampler::Euler).then_some(&euler_params),
        step_cap,
        diverged,
        stalled,
        trajectories: &trajectories,
    };
    tweedie::io::write_json(&a.out.join("trajectory.json"), &file)?;
    if !trajectories.is_empty() {
        let series: Vec<Series> = trajectories
            .iter()
            .take(8)
            .enumerate()
            .map(|(k, t)| Series {
                label: format!("sample {k}"),
                points: t
                    .sigma
                    .iter()
                    .enumerate()
                    .map(|(i, s)| ((i + 1) as f64, *s as f64))
                    .collect(),
            })
            .collect();
        save_line_plot(
            &LinePlot {
                title: "Effective noise σₜ = ‖f(y) − y‖/√D along the ascent".into(),
                x_label: "step t".into(),
                y_label: "σₜ".into(),
                x_scale: Scale::Linear,
                y_scale: Scale::Log,
            },
            &series,
            &a.out.join("trajectory.png"),
        )?;
        write_snapshots(&trajectories, shape, &a.out)?;
        let steps: Vec<usize> = trajectories.iter().map(|t| t.steps).collect();
        println!(
            "{} samples, {}–{} steps (mean {:.0})",
            a.count,
            steps.iter().min().unwrap_or(&0),
            steps.iter().max().unwrap_or(&0),
            steps.iter().sum::<usize>() as f64 / steps.len() as f64
        );
    }
    if step_cap > 0 {
        eprintln!(
            "warning: {step_cap} of {} samples hit --max-steps {} before σₜ fell below --sigma-final {}; raise --max-steps or --h0, or train the network longer at low noise",
            a.count, a.ascent.max_steps, a.ascent.sigma_final
        );
    }
    if stalled > 0 {
        let floors: Vec<f32> = trajectories
            .iter()
            .filter(|t| t.outcome == Outcome::Stalled)
            .map(|t| t.sigma.iter().copied().fold(f32::INFINITY, f32::min))
            .collect();
        let highest = floors.iter().copied().fold(0.0f32, f32::max);
        eprintln!(
            "warning: {stalled} of {} samples stalled before σₜ fell below --sigma-final {} (lowest σₜ reached: up to {highest:.3}); they are the denoised images at their lowest σₜ. The network cannot denoise below that level: raise --sigma-final or train longer",
            a.count, a.ascent.sigma_final
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

/// Snapshots of every sample as one array (samples × snapshots, padded with the last snapshot).
fn write_snapshots(
    trajectories: &[Trajectory],
    shape: [usize; 3],
    out: &std::path::Path,
) -> Result<()> {
    let most = trajectories
        .iter()
        .map(|t| t.snapshots.len())
        .max()
        .unwrap_or(0);
    if most == 0 {
        return Ok(());
    }
    let [c, h, w] = shape;
    let mut data = Vec::new();
    for t in trajectories {
        for i in 0..most {
            let snap = t.snapshots.get(i).or(t.snapshots.last());
            match snap {
                Some((_, y)) => data.extend_from_slice(y),
                None => data.extend(std::iter::repeat_n(f32::NAN, c * h * w)),
            }
        }
    }
    let images = Images::new(data, [trajectories.len() * most, c, h, w]);
    tweedie::data::write_npy(&images, &out.join("snapshots.npy"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo's sampling is the `sample` command line with its own defaults for the rest.
    #[test]
    fn for_run_is_the_command_line_with_its_defaults() {
        let ours = SampleArgs::for_run("r".into(), "o".into(), 16, (1.0, 0.02), 3, DeviceSpec::Cpu);
        let parsed: SampleArgs = crate::cli::defaults_with(&[
            "--run",
            "r",
            "--out",
            "o",
            "--count",
            "16",
            "--sigma0",
            "1",
            "--sigma-final",
            "0.02",
            "--seed",
            "3",
            "--device",
            "cpu",
        ]);
        assert_eq!(format!("{ours:?}"), format!("{parsed:?}"));
    }
}
