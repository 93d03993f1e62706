//! `tweedie bench --preset denoise --run RUN`: any run's network (trained or imported)
//! denoising `--count` images of `--size` in one call, as `bench/torch_import.py speed` times
//! the same network in PyTorch and `python/examples/bench_denoise.py` the call from Python.

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
    let n = a.count.max(1);
    let y = random([n, origin.image_channels(), h, w], 0);
    let flops = n as f64 * origin.net().forward_flops(h, w) as f64;
    println!(
        "{}: {n} image(s) of {h}×{w}, {:.1} GFLOP per call by direct convolution",
        run.display(),
        flops / 1e9
    );
    let secs = time(a.reps, || {
        net.denoise(&y, None).expect("a random image denoises");
    });
    report(
        Line {
            name: "denoise",
            what: "denoise, eval mode",
            per: Some((n as f64, "images/s")),
            flops: Some(flops),
        },
        secs,
        None,
    );
    Ok(())
}
