//! `tweedie bench`: speed against the paper's PyTorch code (bench/reference.py runs the same
//! workloads), through the library's benchmark experiment (`tweedie::experiments::bench`).
//! Prints medians and `RESULT <workload> <ms>` lines (with `FLOPS <workload> <n>` where a rate
//! means something) that `bench/compare.sh` reads; `--out DIR` keeps the record as bench.json.

use super::progress::Terminal;
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use tweedie::experiments::bench::{
    self, Bench, Config, PaperWorkload, Preset, Record, ScalingRow, StudyWorkload, Timing,
};
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
    print(&record);
    if let Some(out) = a.out {
        let dir = ExperimentDir::<Bench>::new(out);
        let _lock = dir.lock()?;
        dir.write_record(&record)?;
        println!("record: {}", dir.record().display());
    }
    Ok(())
}

fn print(record: &Record) {
    println!("{}", record.header);
    if let Some(g) = record.gemm_gflops {
        println!("machine: single-precision GEMM (faer, 2048², all cores) {g:.1} GFLOP/s");
        println!("RESULT gemm_gflops {g:.3}");
    }
    for t in &record.timings {
        print_timing(t, record.gemm_gflops);
    }
    if !record.scaling.is_empty() {
        print_scaling(&record.scaling);
    }
}

/// A workload's line: time, throughput, and its effective rate against the GEMM rate.
fn print_timing(t: &Timing, gemm: Option<f64>) {
    let mut text = format!("{:<48} {:9.2} ms", t.what, t.seconds * 1e3);
    if let Some((n, unit)) = t.throughput() {
        text += &format!("  {n:8.1} {unit}");
    }
    if let Some(rate) = t.gflops() {
        text += &format!("  {rate:7.1} GFLOP/s");
        if let Some(g) = gemm {
            text += &format!(" ({:.0}% of GEMM)", 100.0 * rate / g);
        }
    }
    println!("{text}");
    println!("RESULT {} {:.4}", t.name, t.seconds * 1e3);
    if let Some(flops) = t.flops {
        println!("FLOPS {} {flops:.0}", t.name);
    }
}

fn print_scaling(rows: &[ScalingRow]) {
    println!(
        "{:>6} {:>6} {:>14} {:>14}",
        "size", "batch", "train img/s", "eval img/s"
    );
    for row in rows {
        if let ScalingRow::Throughput {
            size,
            batch,
            train,
            eval,
        } = row
        {
            println!("{size:>6} {batch:>6} {train:>14.1} {eval:>14.1}");
        }
    }
    println!("{:>6} {:>14} {:>14}", "size", "J (VJPs) s", "eigh s");
    for row in rows {
        if let ScalingRow::Jacobian {
            size,
            vjp_seconds,
            eigh_seconds,
        } = row
        {
            println!("{size:>6} {vjp_seconds:>14.2} {eigh_seconds:>14.2}");
        }
    }
}
