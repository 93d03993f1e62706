//! The `denoise` preset: any run's network (trained or imported) denoising `count` images of
//! `size` in one call, as `bench/torch_import.py speed` times the same network in PyTorch and
//! `python/examples/bench_denoise.py` the call from Python.

use super::{random, try_time, BenchError, Timings};
use crate::denoise::Denoiser;
use crate::train::record::RunDir;
use crate::train::{load_network, Weights};
use burn::tensor::Device;
use std::path::Path;

pub(super) fn run(
    run: &Path,
    count: usize,
    [h, w]: [usize; 2],
    reps: usize,
    device: &Device,
    out: &mut Timings<'_>,
) -> Result<String, BenchError> {
    let (net, origin) = load_network(&RunDir::new(run), device, Weights::Ema)?;
    let y = random([count, origin.image_channels(), h, w], 0);
    let flops = count as f64 * origin.net().forward_flops(h, w) as f64;
    let header = format!(
        "{}: {count} image(s) of {h}×{w}, {:.1} GFLOP per call by direct convolution",
        run.display(),
        flops / 1e9
    );
    // a size or channel count the network cannot take is an error, not a panic
    let secs = try_time(reps, || net.denoise(&y, None).map(drop))?;
    let per = Some((count as f64, "images/s"));
    out.push("denoise", "denoise, eval mode", secs, per, Some(flops));
    Ok(header)
}
