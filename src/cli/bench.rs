//! `tweedie bench`: speed against the paper's PyTorch code (bench/reference.py runs the same
//! workloads), through the library's benchmark experiment (`tweedie::experiments::bench`).
//! Prints medians and `RESULT <workload> <ms>` lines (with `FLOPS <workload> <n>` where a rate
//! means something) that `bench/compare.sh` reads; `--out DIR` keeps the record as bench.json.

use super::progress::Terminal;
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use tweedie::experiments::bench::{self, Bench, Config, PaperWorkload, Preset, StudyWorkload};
use tweedie::experiments::dir::ExperimentDir;
use tweedie::DeviceSpec;

/// Which family of workloads to time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PresetArg {
    /// The paper's BF-UNet (3 × 64): training step, eval, VJPs, the 40×40 Jacobian.
    Paper,
    /// What the experiments run: BF-UNet 2 × 16 and 2 × 32 training steps at 28×28 and 32×32,
    /// one step of each sampler, the empirical-optimal denoiser on 10 000 images, the dense
    /// 28×28 Jacobian.
    Study,
    /// A run's network (`--run`, trained or imported) denoising `--count` images of `--size`.
    Denoise,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Workload family.
    #[arg(long, value_enum, default_value_t = PresetArg::Paper)]
    preset: PresetArg,
    /// Timed repetitions per workload (after 2 warm-ups).
    #[arg(long, default_value_t = 10)]
    reps: usize,
    /// Paper preset: feature channels of the first scale (64 is the paper's).
    #[arg(long, default_value_t = 64)]
    channels: usize,
    /// Workloads, comma-separated [paper: train, eval, vjp (default), jacobian; study: train,
    /// sample, eo, jacobian (default all)].
    #[arg(long)]
    workloads: Option<String>,
    /// Denoise preset: the run folder whose network to time.
    #[arg(long)]
    run: Option<PathBuf>,
    /// Denoise preset: images per call.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Denoise preset: image size H or HxW.
    #[arg(long, value_parser = super::image_size_arg, default_value = "256")]
    size: [usize; 2],
    /// Paper preset, instead: throughput vs image and batch size, and Jacobian cost vs size.
    #[arg(long)]
    scaling: bool,
    /// Keep the record in this folder as bench.json.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Device: auto, cpu, wgpu[:N], cuda[:N] or tch.
    #[arg(long, default_value = "auto")]
    device: DeviceSpec,
}

/// `--workloads` as the preset's workload type, or its default list.
fn workloads<W: ValueEnum>(given: Option<&str>, default: &[W]) -> Result<Vec<W>> {
    let Some(text) = given else {
        return Ok(default.to_vec());
    };
    text.split(',')
        .map(|w| {
            W::from_str(w.trim(), true).map_err(|_| {
                let names: Vec<String> = W::value_variants()
                    .iter()
                    .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
                    .collect();
                anyhow::anyhow!(
                    "--workloads: unknown workload `{w}`; use {}",
                    names.join(", ")
                )
            })
        })
        .collect()
}

fn config(a: &BenchArgs) -> Result<Config> {
    use PaperWorkload as P;
    use StudyWorkload as S;
    let w = a.workloads.as_deref();
    if a.scaling && a.preset != PresetArg::Paper {
        bail!("--scaling times the paper's network: use it with --preset paper");
    }
    if a.run.is_some() && a.preset != PresetArg::Denoise {
        bail!("--run names the network of --preset denoise: add --preset denoise");
    }
    let preset = match a.preset {
        PresetArg::Paper if a.scaling => Preset::Scaling {
            channels: a.channels,
        },
        PresetArg::Paper => Preset::Paper {
            channels: a.channels,
            workloads: workloads(w, &[P::Train, P::Eval, P::Vjp])?,
        },
        PresetArg::Study => Preset::Study {
            workloads: workloads(w, &[S::Train, S::Sample, S::Eo, S::Jacobian])?,
        },
        PresetArg::Denoise => {
            let Some(run) = a.run.clone() else {
                bail!("--preset denoise times a run's network: give it with --run");
            };
            Preset::Denoise {
                run,
                count: a.count,
                size: a.size,
            }
        }
    };
    Ok(Config {
        preset,
        reps: a.reps,
    })
}

pub fn run(a: BenchArgs) -> Result<()> {
    let cfg = config(&a)?;
    cfg.validate()?;
    let device = a.device.device()?;
    println!(
        "on {} ({} timed reps, median)",
        a.device.describe(),
        cfg.reps
    );
    let record = bench::run(&cfg, &device, &Terminal::new())?;
    print!("{}", tweedie::report::bench::summary(&record));
    if let Some(out) = a.out {
        let dir = ExperimentDir::<Bench>::new(out);
        let _lock = dir.lock()?;
        dir.write_record(&record)?;
        println!("record: {}", dir.record().display());
    }
    Ok(())
}
