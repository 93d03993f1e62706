//! `tweedie bench`: the three workloads that compare us with the paper's PyTorch code, on the
//! 7.6 M-parameter BF-UNet (3 blocks × 64 channels): an Adam training step (batch 16, 40×40),
//! eval (batch 16, 80×80), and 16 input-VJPs at one 80×80 image. Prints medians and images/s;
//! ratios against PyTorch come from running the reference on the same machine.

use anyhow::Result;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use clap::Args;
use std::time::Instant;
use tweedie::analysis::jacobian::JacobianProbe;
use tweedie::data::Images;
use tweedie::nn::{Arch, Mode, NetConfig};
use tweedie::rng::{stream, Purpose};
use tweedie::DeviceSpec;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Timed repetitions per workload (after 2 warm-ups).
    #[arg(long, default_value_t = 10)]
    reps: usize,
    /// Feature channels of the first scale (64 is the paper's).
    #[arg(long, default_value_t = 64)]
    channels: usize,
    /// Device: auto, cpu, cuda[:N] or tch.
    #[arg(long, default_value = "auto")]
    device: DeviceSpec,
}

fn random(shape: [usize; 4], seed: u64) -> Images {
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = stream(seed, Purpose::Probe, 0);
    let n = shape.iter().product();
    Images::new(
        (0..n).map(|_| StandardNormal.sample(&mut rng)).collect(),
        shape,
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

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

pub fn run(a: BenchArgs) -> Result<()> {
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
        a.device,
        a.reps
    );
    let mut optim = AdamConfig::new().init();
    let x = random([16, 1, 40, 40], 1).to_tensor(&adev);
    let z = random([16, 1, 40, 40], 2).to_tensor(&adev).mul_scalar(0.3);
    let train = time(a.reps, || {
        let y = x.clone() + z.clone();
        let loss = (net.forward(y, Mode::Train) - z.clone())
            .square()
            .sum()
            .div_scalar(16.0);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(1e-4, net.clone(), grads);
        let _: f32 = loss.into_scalar();
    });
    println!(
        "train  (Adam step, batch 16, 40×40): {:8.1} ms  {:7.1} images/s",
        train * 1e3,
        16.0 / train
    );
    let plain = net.valid();
    let y = random([16, 1, 80, 80], 3).to_tensor(&device);
    let eval = time(a.reps, || {
        let out = plain.forward(y.clone(), Mode::Eval);
        let _ = out.into_data();
    });
    println!(
        "eval   (batch 16, 80×80):            {:8.1} ms  {:7.1} images/s",
        eval * 1e3,
        16.0 / eval
    );
    let probe = JacobianProbe::new(plain, &device);
    let y1 = random([1, 1, 80, 80], 4);
    let vs = random([16, 1, 80, 80], 5);
    let vjp = time(a.reps, || {
        let _ = probe.vjp(&y1, &vs);
    });
    println!(
        "vjp    (16 VJPs at one 80×80 image):  {:8.1} ms  {:7.1} VJPs/s (one batched backward)",
        vjp * 1e3,
        16.0 / vjp
    );
    Ok(())
}
