//! The `paper` preset: the 7.6 M-parameter BF-UNet (3 scales × 64 channels) — an Adam
//! training step (batch 16, 40×40), eval (batch 16, 80×80), 16 input-VJPs at one 80×80 image,
//! and the full 40×40 Jacobian with its eigendecomposition; and the `scaling` preset, its
//! throughput against image and batch size.

use super::{once, random, time, try_time, BenchError, ScalingRow, Timings};
use crate::analysis::jacobian::full;
use crate::analysis::spectrum::symmetric_eigen;
use crate::denoise::{Learned, Linearize};
use crate::nn::{Arch, Mode, NetConfig, Network};
use crate::progress::Progress;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// A workload of the paper's network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum PaperWorkload {
    /// An Adam step, batch 16, 40×40.
    Train,
    /// An eval forward, batch 16, 80×80.
    Eval,
    /// 16 VJPs at one 80×80 image.
    Vjp,
    /// The dense 40×40 Jacobian (1600 VJPs) and its eigendecomposition.
    Jacobian,
}

fn paper_net(channels: usize) -> NetConfig {
    NetConfig {
        arch: Arch::BfUnet,
        image_channels: 1,
        channels,
        blocks: 3,
        layers: 20,
    }
}

/// Seconds per Adam step at `[batch, 1, size, size]`.
pub(super) fn train_step(
    net: &mut Network,
    device: &Device,
    batch: usize,
    size: usize,
    reps: usize,
) -> f64 {
    let mut optim = AdamConfig::new().init();
    let x = random([batch, 1, size, size], 1).to_tensor(device);
    let z = random([batch, 1, size, size], 2)
        .to_tensor(device)
        .mul_scalar(0.3);
    time(reps, || {
        let y = x.clone() + z.clone();
        let loss = (net.forward(y, Mode::Train) - z.clone())
            .square()
            .sum()
            .div_scalar(batch as f64);
        let grads = GradientsParams::from_grads(loss.backward(), &*net);
        *net = optim.step(1e-4, net.clone(), grads);
        let _: f32 = loss.into_scalar();
    })
}

/// Seconds per eval forward at `[batch, 1, size, size]`.
fn eval_pass(net: &Network, device: &Device, batch: usize, size: usize, reps: usize) -> f64 {
    let y = random([batch, 1, size, size], 3).to_tensor(device);
    time(reps, || {
        let _ = net.forward(y.clone(), Mode::Eval).into_data();
    })
}

pub(super) fn run(
    channels: usize,
    workloads: &[PaperWorkload],
    reps: usize,
    device: &Device,
    out: &mut Timings<'_>,
) -> Result<String, BenchError> {
    let cfg = paper_net(channels);
    let adev = device.clone().autodiff();
    let mut net = cfg.init(&adev, 0);
    let header = format!("BF-UNet {} parameters", net.param_count());
    let plain = net.valid();
    let fwd = |size: usize| cfg.forward_flops(size, size) as f64;
    for w in workloads {
        match w {
            PaperWorkload::Train => {
                let s = train_step(&mut net, &adev, 16, 40, reps);
                // forward, then the input and weight gradients: three convolutions' worth
                let flops = 3.0 * 16.0 * fwd(40);
                let what = "train (Adam step, batch 16, 40×40)";
                out.push("train", what, s, Some((16.0, "images/s")), Some(flops));
            }
            PaperWorkload::Eval => {
                let s = eval_pass(&plain, device, 16, 80, reps);
                let what = "eval (batch 16, 80×80)";
                out.push(
                    "eval",
                    what,
                    s,
                    Some((16.0, "images/s")),
                    Some(16.0 * fwd(80)),
                );
            }
            PaperWorkload::Vjp => {
                let probe = Learned::new(plain.clone(), device.clone(), 1);
                let (y, vs) = (random([1, 1, 80, 80], 4), random([16, 1, 80, 80], 5));
                let s = try_time(reps, || {
                    probe.linearize(&y, None).map(|at| drop(at.vjp(&vs)))
                })?;
                let what = "vjp (16 VJPs at one 80×80: 1 fwd + 1 adjoint)";
                out.push("vjp", what, s, Some((16.0, "VJPs/s")), Some(17.0 * fwd(80)));
            }
            PaperWorkload::Jacobian => {
                let probe = Learned::new(plain.clone(), device.clone(), 1);
                let y = random([1, 1, 40, 40], 6);
                let at = probe.linearize(&y, None)?;
                let (vjp_s, jac) = once(|| full(&*at, 64));
                let (eig_s, eig) = once(|| symmetric_eigen(&jac, 1600));
                eig?;
                // one forward, 1600 adjoint images
                let what = "full 40×40 Jacobian: 1600 VJPs (chunks of 64)";
                out.push("jacobian_vjp", what, vjp_s, None, Some(1601.0 * fwd(40)));
                let what = "full 40×40 Jacobian: eigendecomposition";
                out.push("jacobian_eigh", what, eig_s, None, None);
            }
        }
    }
    Ok(header)
}

pub(super) fn scaling(
    channels: usize,
    reps: usize,
    device: &Device,
    progress: &dyn Progress,
) -> Result<(String, Vec<ScalingRow>), BenchError> {
    let adev = device.clone().autodiff();
    let mut net = paper_net(channels).init(&adev, 0);
    let header = format!("BF-UNet {} parameters", net.param_count());
    let plain = net.valid();
    let mut rows = Vec::new();
    progress.start("throughput and Jacobian cost", 12);
    for size in [28, 40, 80] {
        for batch in [8, 16, 32] {
            let train = batch as f64 / train_step(&mut net, &adev, batch, size, reps);
            let eval = batch as f64 / eval_pass(&plain, device, batch, size, reps);
            rows.push(ScalingRow::Throughput {
                size,
                batch,
                train,
                eval,
            });
            progress.update(rows.len() as u64, "");
        }
    }
    let probe = Learned::new(plain, device.clone(), 1);
    for size in [16, 28, 40] {
        let y = random([1, 1, size, size], 7);
        let at = probe.linearize(&y, None)?;
        let (vjp_seconds, jac) = once(|| full(&*at, 64));
        let (eigh_seconds, eig) = once(|| symmetric_eigen(&jac, size * size));
        eig?;
        rows.push(ScalingRow::Jacobian {
            size,
            vjp_seconds,
            eigh_seconds,
        });
        progress.update(rows.len() as u64, "");
    }
    progress.finish();
    Ok((header, rows))
}
