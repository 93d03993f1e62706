//! The `study` preset: what the demo and the studies run on a laptop, timed the way
//! bench/reference.py times the same work in PyTorch — an Adam step of BF-UNet 2 × 16 and
//! 2 × 32 at 28×28 and 32×32 (batch 32), one step of each sampler on 64 images of 28×28 (the
//! denoiser call and the update), the empirical-optimal denoiser on 10 000 training images
//! for 64 noisy ones, and the dense 28×28 Jacobian of the 2 × 16 network (784 VJPs).

use super::paper::train_step;
use super::{gemm_rate, random, report, time, BenchArgs, Line};
use anyhow::{bail, Result};
use burn::module::Module;
use std::sync::atomic::{AtomicUsize, Ordering};
use tweedie::analysis::jacobian::full;
use tweedie::data::Images;
use tweedie::denoise::{DenoiseError, Denoiser, EmpiricalOptimal, Learned, Linearize};
use tweedie::nn::{Arch, NetConfig};
use tweedie::progress::Silent;
use tweedie::sampling::ascent::AscentParams;
use tweedie::sampling::euler::EulerParams;
use tweedie::sampling::Sampler;

/// The study network: BF-UNet with two scales of `channels`.
fn study_net(channels: usize) -> NetConfig {
    NetConfig {
        arch: Arch::BfUnet,
        image_channels: 1,
        channels,
        blocks: 2,
        layers: 0,
    }
}

/// Sampler steps timed per round: 64 images × `STEPS` denoiser calls.
const STEPS: usize = 10;
/// Training images of the empirical-optimal denoiser, and its noise level.
const EO_TRAIN: usize = 10_000;
const EO_SIGMA: f32 = 0.1;

/// Counts the images it denoises, so a step's time is the sampler's time over the batches it
/// ran (an ascent sample that stops early runs fewer).
struct Counting<'a> {
    inner: &'a Learned,
    images: AtomicUsize,
}

impl Denoiser for Counting<'_> {
    fn denoise(&self, y: &Images, sigma: Option<f32>) -> Result<Images, DenoiseError> {
        self.images.fetch_add(y.len(), Ordering::Relaxed);
        self.inner.denoise(y, sigma)
    }
    fn name(&self) -> String {
        self.inner.name()
    }
    fn is_blind(&self) -> bool {
        true
    }
}

pub(super) fn run(a: &BenchArgs) -> Result<()> {
    let device = a.device.device()?;
    let adev = device.clone().autodiff();
    println!(
        "study workloads on {} ({} timed reps, median)",
        a.device.describe(),
        a.reps
    );
    let gemm = tweedie::device::is_host(&device).then(|| gemm_rate(2048));
    let workloads = a.workloads.as_deref().unwrap_or("train,sample,eo,jacobian");
    let small = study_net(16);
    let fwd = |cfg: &NetConfig, size: usize| cfg.forward_flops(size, size) as f64;
    for w in workloads.split(',').map(str::trim) {
        match w {
            "train" => {
                for (channels, size) in [(16, 28), (16, 32), (32, 28), (32, 32)] {
                    let cfg = study_net(channels);
                    let mut net = cfg.init(&adev, 0);
                    let s = train_step(&mut net, &adev, 32, size, a.reps);
                    let (name, what) = (
                        format!("train_2x{channels}_{size}"),
                        format!("train 2×{channels} (Adam step, batch 32, {size}×{size})"),
                    );
                    let line = Line {
                        name: &name,
                        what: &what,
                        per: Some((32.0, "images/s")),
                        flops: Some(3.0 * 32.0 * fwd(&cfg, size)),
                    };
                    report(line, s, gemm);
                }
            }
            "sample" => {
                let net = small.init(&device, 0);
                let learned = Learned::new(net, device.clone(), 1);
                let samplers = [
                    (
                        "ascent_step",
                        Sampler::Ascent(AscentParams {
                            sigma_final: 1e-6,
                            max_steps: STEPS,
                            ..Default::default()
                        }),
                    ),
                    (
                        "euler_step",
                        Sampler::Euler(EulerParams {
                            steps: STEPS - 1,
                            ..Default::default()
                        }),
                    ),
                ];
                for (name, sampler) in samplers {
                    let counting = Counting {
                        inner: &learned,
                        images: AtomicUsize::new(0),
                    };
                    let s = time(a.reps, || {
                        let _ = sampler.sample(&counting, [1, 28, 28], 64, 0, 0, &Silent);
                    });
                    // the calls of one run (the warm-ups and timed runs all ran the same)
                    let calls = counting.images.load(Ordering::Relaxed) as f64
                        / (a.reps.max(1) + 2) as f64
                        / 64.0;
                    let what = format!("{name} (2×16, 64 images 28×28, per step)");
                    let line = Line {
                        name,
                        what: &what,
                        per: Some((64.0, "images/s")),
                        flops: Some(64.0 * fwd(&small, 28)),
                    };
                    report(line, s / calls, gemm);
                }
            }
            "eo" => {
                let train = random([EO_TRAIN, 1, 28, 28], 8);
                let y = random([64, 1, 28, 28], 9);
                let eo = EmpiricalOptimal::new(train);
                // σ = 0.1: few images carry weight (screened); σ = 1: the posterior is broad
                for (name, sigma) in [("eo_10000", EO_SIGMA), ("eo_10000_broad", 1.0)] {
                    let s = time(a.reps, || {
                        let _ = eo.denoise(&y, Some(sigma));
                    });
                    let what = format!("empirical optimal, N = 10 000, 64 images, σ = {sigma}");
                    let line = Line {
                        name,
                        what: &what,
                        per: Some((64.0, "images/s")),
                        // the distances' GEMM: the ceiling the issue measures against
                        flops: Some(2.0 * 64.0 * EO_TRAIN as f64 * 784.0),
                    };
                    report(line, s, gemm);
                }
            }
            "jacobian" => {
                let probe = Learned::new(small.init(&device, 0).valid(), device.clone(), 1);
                let y = random([1, 1, 28, 28], 10);
                let s = time(a.reps.min(3), || {
                    let _ = probe.linearize(&y, None).map(|at| full(&*at, 64));
                });
                let line = Line {
                    name: "jacobian_2x16_28",
                    what: "dense 28×28 Jacobian, 2×16 (784 VJPs)",
                    per: None,
                    flops: Some(785.0 * fwd(&small, 28)),
                };
                report(line, s, gemm);
            }
            other => bail!("unknown workload `{other}`; use train, sample, eo, jacobian"),
        }
    }
    Ok(())
}
