//! `tweedie bench --preset denoise --run RUN`: any run's network (trained or imported)
//! denoising one image, as `bench/torch_import.py speed` times the same network in PyTorch.

use super::{random, report, time, BenchArgs, Line};
use anyhow::{bail, Result};
use tweedie::denoise::Denoiser;
use tweedie::train::record::RunDir;
use tweedie::train::Weights;

pub fn run(a: &BenchArgs) -> Result<()> {
    let Some(run) = &a.run else {
        bail!("--preset denoise times a run's network: give it with --run");
    };
    let device = a.device.device()?;
    let (net, origin) = tweedie::train::load_network(&RunDir::new(run), &device, Weights::Ema)?;
    let [h, w] = a.size;
    let y = random([1, origin.image_channels(), h, w], 0);
    let flops = origin.net().forward_flops(h, w) as f64;
    println!(
        "{}: {h}×{w}, {:.1} GFLOP per pass by direct convolution",
        run.display(),
        flops / 1e9
    );
    let secs = time(a.reps, || {
        net.denoise(&y, None).expect("a random image denoises");
    });
    report(
        Line {
            name: "denoise",
            what: "one image, eval mode",
            per: Some((1.0, "images/s")),
            flops: Some(flops),
        },
        secs,
        None,
    );
    Ok(())
}
