//! The `paper` preset: the 7.6 M-parameter BF-UNet (3 blocks × 64 channels) — an Adam
//! training step (batch 16, 40×40), eval (batch 16, 80×80), 16 input-VJPs at one 80×80 image,
//! and the full 40×40 Jacobian with its eigendecomposition; `--scaling` prints throughput vs
//! image and batch size.

use super::{gemm_rate, random, report, time, BenchArgs, Line};
use anyhow::{bail, Result};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use std::time::Instant;
use tweedie::analysis::jacobian::full;
use tweedie::analysis::spectrum::symmetric_eigen;
use tweedie::denoise::{Learned, Linearize};
use tweedie::nn::{Arch, Mode, NetConfig, Network};

/// Seconds per Adam step at `[batch, 1, size, size]`.
pub(super) fn train_step(
    net: &mut Network,
    device: &burn::tensor::Device,
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
fn eval_pass(
    net: &Network,
    device: &burn::tensor::Device,
    batch: usize,
    size: usize,
    reps: usize,
) -> f64 {
    let y = random([batch, 1, size, size], 3).to_tensor(device);
    time(reps, || {
        let _ = net.forward(y.clone(), Mode::Eval).into_data();
    })
}

pub(super) fn run(a: &BenchArgs) -> Result<()> {
    let device = a.device.device()?;
    let cfg = NetConfig {
        arch: Arch::BfUnet,
        image_channels: 1,
        channels: a.channels,
        blocks: 3,
        layers: 20,
    };
    let adev = device.clone().autodiff();
    let mut net = cfg.init(&adev, 0);
    println!(
        "BF-UNet {} parameters on {} ({} timed reps, median)",
        net.param_count(),
        a.device.describe(),
        a.reps
    );
    if a.scaling {
        return scaling(&mut net, &device, &adev, a.reps.min(5));
    }
    let plain = net.valid();
    // the limit is the CPU's; on a GPU the line would compare unlike with unlike
    let gemm = tweedie::device::is_host(&device).then(|| gemm_rate(2048));
    let fwd = |size: usize| cfg.forward_flops(size, size) as f64;
    let workloads = a.workloads.as_deref().unwrap_or("train,eval,vjp");
    for w in workloads.split(',').map(str::trim) {
        match w {
            "train" => {
                let s = train_step(&mut net, &adev, 16, 40, a.reps);
                // forward, then the input and weight gradients: three convolutions' worth
                let line = Line {
                    name: "train",
                    what: "train (Adam step, batch 16, 40×40)",
                    per: Some((16.0, "images/s")),
                    flops: Some(3.0 * 16.0 * fwd(40)),
                };
                report(line, s, gemm);
            }
            "eval" => {
                let s = eval_pass(&plain, &device, 16, 80, a.reps);
                let line = Line {
                    name: "eval",
                    what: "eval (batch 16, 80×80)",
                    per: Some((16.0, "images/s")),
                    flops: Some(16.0 * fwd(80)),
                };
                report(line, s, gemm);
            }
            "vjp" => {
                let probe = Learned::new(plain.clone(), device.clone(), 1);
                let (y, vs) = (random([1, 1, 80, 80], 4), random([16, 1, 80, 80], 5));
                let s = time(a.reps, || {
                    let _ = probe.linearize(&y, None).map(|at| at.vjp(&vs));
                });
                let line = Line {
                    name: "vjp",
                    what: "vjp (16 VJPs at one 80×80: 1 fwd + 1 adjoint)",
                    per: Some((16.0, "VJPs/s")),
                    flops: Some(17.0 * fwd(80)),
                };
                report(line, s, gemm);
            }
            "jacobian" => {
                let probe = Learned::new(plain.clone(), device.clone(), 1);
                let y = random([1, 1, 40, 40], 6);
                let t = Instant::now();
                let jac = full(&*probe.linearize(&y, None)?, 64);
                let vjp_s = t.elapsed().as_secs_f64();
                let t = Instant::now();
                let _ = symmetric_eigen(&jac, 1600)?;
                let eig_s = t.elapsed().as_secs_f64();
                let line = Line {
                    name: "jacobian_vjp",
                    what: "full 40×40 Jacobian: 1600 VJPs (chunks of 64)",
                    per: None,
                    flops: Some(1601.0 * fwd(40)), // one forward, 1600 adjoint images
                };
                report(line, vjp_s, gemm);
                let line = Line {
                    name: "jacobian_eigh",
                    what: "full 40×40 Jacobian: eigendecomposition",
                    per: None,
                    flops: None,
                };
                report(line, eig_s, gemm);
            }
            other => bail!("unknown workload `{other}`; use train, eval, vjp, jacobian"),
        }
    }
    Ok(())
}

fn scaling(
    net: &mut Network,
    device: &burn::tensor::Device,
    adev: &burn::tensor::Device,
    reps: usize,
) -> Result<()> {
    println!(
        "{:>6} {:>6} {:>14} {:>14}",
        "size", "batch", "train img/s", "eval img/s"
    );
    let plain = net.valid();
    for size in [28, 40, 80] {
        for batch in [8, 16, 32] {
            let tr = train_step(net, adev, batch, size, reps);
            let ev = eval_pass(&plain, device, batch, size, reps);
            println!(
                "{size:>6} {batch:>6} {:>14.1} {:>14.1}",
                batch as f64 / tr,
                batch as f64 / ev
            );
        }
    }
    println!("{:>6} {:>14} {:>14}", "size", "J (VJPs) s", "eigh s");
    let probe = Learned::new(plain, device.clone(), 1);
    for size in [16, 28, 40] {
        let y = random([1, 1, size, size], 7);
        let t = Instant::now();
        let jac = full(&*probe.linearize(&y, None)?, 64);
        let v = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let _ = symmetric_eigen(&jac, size * size)?;
        println!("{size:>6} {v:>14.2} {:>14.2}", t.elapsed().as_secs_f64());
    }
    Ok(())
}
