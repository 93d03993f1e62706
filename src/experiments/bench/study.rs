//! The `study` preset: what the demo and the studies run on a laptop, timed the way
//! bench/reference.py times the same work in PyTorch — an Adam step of BF-UNet 2 × 16 and
//! 2 × 32 at 28×28 and 32×32 (batch 32), one step of each sampler on 64 images of 28×28 (the
//! denoiser call and the update), the empirical-optimal denoiser on 10 000 training images
//! for 64 noisy ones, and the dense 28×28 Jacobian of the 2 × 16 network (784 VJPs).

use super::paper::train_step;
use super::{random, try_time, BenchError, Timings};
use crate::analysis::jacobian::full;
use crate::data::Images;
use crate::denoise::{DenoiseError, Denoiser, EmpiricalOptimal, Learned, Linearize};
use crate::nn::{Arch, NetConfig};
use crate::progress::Silent;
use crate::sampling::ascent::AscentParams;
use crate::sampling::euler::EulerParams;
use crate::sampling::Sampler;
use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A workload of the experiments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum StudyWorkload {
    /// Adam steps of BF-UNet 2 × 16 and 2 × 32 at 28×28 and 32×32, batch 32.
    Train,
    /// One step of each sampler on 64 images of 28×28.
    Sample,
    /// The empirical-optimal denoiser on 10 000 training images, 64 noisy ones.
    Eo,
    /// The dense 28×28 Jacobian of the 2 × 16 network.
    Jacobian,
}

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

pub(super) fn run(
    workloads: &[StudyWorkload],
    reps: usize,
    device: &Device,
    out: &mut Timings<'_>,
) -> Result<String, BenchError> {
    let adev = device.clone().autodiff();
    let small = study_net(16);
    let fwd = |cfg: &NetConfig, size: usize| cfg.forward_flops(size, size) as f64;
    for w in workloads {
        match w {
            StudyWorkload::Train => {
                for (channels, size) in [(16, 28), (16, 32), (32, 28), (32, 32)] {
                    let cfg = study_net(channels);
                    let mut net = cfg.init(&adev, 0);
                    let s = train_step(&mut net, &adev, 32, size, reps);
                    out.push(
                        format!("train_2x{channels}_{size}"),
                        format!("train 2×{channels} (Adam step, batch 32, {size}×{size})"),
                        s,
                        Some((32.0, "images/s")),
                        Some(3.0 * 32.0 * fwd(&cfg, size)),
                    );
                }
            }
            StudyWorkload::Sample => {
                let learned = Learned::new(small.init(device, 0), device.clone(), 1);
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
                    let s = try_time(reps, || {
                        sampler
                            .sample(&counting, [1, 28, 28], 64, 0, 0, &Silent)
                            .map(drop)
                    })?;
                    // the calls of one run (the warm-ups and timed runs all ran the same)
                    let calls =
                        counting.images.load(Ordering::Relaxed) as f64 / (reps + 2) as f64 / 64.0;
                    out.push(
                        name,
                        format!("{name} (2×16, 64 images 28×28, per step)"),
                        s / calls,
                        Some((64.0, "images/s")),
                        Some(64.0 * fwd(&small, 28)),
                    );
                }
            }
            StudyWorkload::Eo => {
                let train = random([EO_TRAIN, 1, 28, 28], 8);
                let y = random([64, 1, 28, 28], 9);
                let eo = EmpiricalOptimal::new(train);
                // σ = 0.1: few images carry weight (screened); σ = 1: the posterior is broad
                for (name, sigma) in [("eo_10000", EO_SIGMA), ("eo_10000_broad", 1.0)] {
                    let s = try_time(reps, || eo.denoise(&y, Some(sigma)).map(drop))?;
                    out.push(
                        name,
                        format!("empirical optimal, N = 10 000, 64 images, σ = {sigma}"),
                        s,
                        Some((64.0, "images/s")),
                        // the distances' GEMM: the ceiling the speed issue measures against
                        Some(2.0 * 64.0 * EO_TRAIN as f64 * 784.0),
                    );
                }
            }
            StudyWorkload::Jacobian => {
                let probe = Learned::new(small.init(device, 0).valid(), device.clone(), 1);
                let y = random([1, 1, 28, 28], 10);
                // the forward pass counts, as it does in torch.func.jacrev
                let s = try_time(reps.min(3), || {
                    probe.linearize(&y, None).map(|at| drop(full(&*at, 64)))
                })?;
                out.push(
                    "jacobian_2x16_28",
                    "dense 28×28 Jacobian, 2×16 (784 VJPs)",
                    s,
                    None,
                    Some(785.0 * fwd(&small, 28)),
                );
            }
        }
    }
    Ok("BF-UNet 2 × 16 and 2 × 32 (the studies' networks)".into())
}
