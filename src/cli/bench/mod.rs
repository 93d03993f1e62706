//! `tweedie bench`: speed against the paper's PyTorch code (bench/reference.py runs the same
//! workloads). Two presets: `paper`, the 7.6 M-parameter BF-UNet the paper trains
//! ([`paper`]), and `study`, the small networks, samplers and oracle that the demo and the
//! studies run on a laptop ([`study`]); and `denoise`, any run's network on one image
//! ([`denoise`]; bench/torch_import.py's `speed` is its PyTorch side for imported networks). Prints medians and `RESULT <workload> <ms>` lines
//! (with `FLOPS <workload> <n>` where a rate means something) that `bench/compare.sh` reads.

mod denoise;
mod paper;
mod study;

use anyhow::Result;
use clap::{Args, ValueEnum};
use std::time::Instant;
use tweedie::data::Images;
use tweedie::rng::{stream, Purpose};
use tweedie::DeviceSpec;

/// Which family of workloads to time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Preset {
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
    #[arg(long, value_enum, default_value_t = Preset::Paper)]
    preset: Preset,
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
    run: Option<std::path::PathBuf>,
    /// Denoise preset: images per call.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Denoise preset: image size H or HxW.
    #[arg(long, value_parser = super::image_size_arg, default_value = "256")]
    size: [usize; 2],
    /// Paper preset, instead: throughput vs image and batch size, and Jacobian cost vs size.
    #[arg(long)]
    scaling: bool,
    /// Device: auto, cpu, wgpu[:N], cuda[:N] or tch.
    #[arg(long, default_value = "auto")]
    device: DeviceSpec,
}

pub fn run(a: BenchArgs) -> Result<()> {
    match a.preset {
        Preset::Paper => paper::run(&a),
        Preset::Study => study::run(&a),
        Preset::Denoise => denoise::run(&a),
    }
}

/// Normal noise of `shape` from `seed` (probe stream).
fn random(shape: [usize; 4], seed: u64) -> Images {
    Images::standard_normal(shape, &mut stream(seed, Purpose::Probe, 0))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median seconds of `reps` calls after 2 warm-ups.
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..2 {
        f();
    }
    median(
        (0..reps.max(1))
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// A workload's line: time, throughput, and its effective rate (the direct computation's
/// FLOPs over the time) against the machine's GEMM rate.
struct Line<'a> {
    name: &'a str,
    what: &'a str,
    per: Option<(f64, &'a str)>,
    flops: Option<f64>,
}

fn report(line: Line<'_>, secs: f64, gemm: Option<f64>) {
    let mut text = format!("{:<48} {:9.2} ms", line.what, secs * 1e3);
    if let Some((n, unit)) = line.per {
        text += &format!("  {:8.1} {unit}", n / secs);
    }
    if let Some(flops) = line.flops {
        let rate = flops / secs / 1e9;
        text += &format!("  {rate:7.1} GFLOP/s");
        if let Some(g) = gemm {
            text += &format!(" ({:.0}% of GEMM)", 100.0 * rate / g);
        }
    }
    println!("{text}");
    println!("RESULT {} {:.4}", line.name, secs * 1e3);
    if let Some(flops) = line.flops {
        println!("FLOPS {} {flops:.0}", line.name);
    }
}

/// The machine's single-precision GEMM rate in GFLOP/s: faer multiplying two `n`×`n` f32
/// matrices on all cores (median of 3 after a warm-up), the practical ceiling of any
/// convolution or distance computation built on GEMMs here. Printed, with a `RESULT` line.
fn gemm_rate(n: usize) -> f64 {
    use faer::linalg::matmul::matmul;
    use faer::{Accum, Mat, Par};
    let a = Mat::<f32>::from_fn(n, n, |i, j| ((i * 7 + j * 3) % 11) as f32 - 5.0);
    let b = Mat::<f32>::from_fn(n, n, |i, j| ((i * 5 + j * 2) % 13) as f32 - 6.0);
    let mut c = Mat::<f32>::zeros(n, n);
    let secs = time(3, || {
        matmul(
            c.as_mut(),
            Accum::Replace,
            a.as_ref(),
            b.as_ref(),
            1.0,
            Par::rayon(0),
        )
    });
    let g = 2.0 * (n as f64).powi(3) / secs / 1e9;
    println!("machine: single-precision GEMM (faer, {n}², all cores) {g:.1} GFLOP/s");
    println!("RESULT gemm_gflops {g:.3}");
    g
}
