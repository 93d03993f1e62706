//! The `denoise` preset: any run's network (trained or imported) denoising `count` images of
//! `size` in one call, as `bench/torch_import.py speed` times the same network in PyTorch and
//! `python/examples/bench_denoise.py` the call from Python.

use super::{random, time, BenchError, Timings};
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
    // the first call reports a bad size or channel count as an error, not a panic
    net.denoise(&y, None)?;
    let mut failed = None;
    let secs = time(reps, || {
        if let Err(e) = net.denoise(&y, None) {
            failed.get_or_insert(e);
        }
    });
    if let Some(e) = failed {
        return Err(e.into());
    }
    let per = Some((count as f64, "images/s"));
    out.push("denoise", "denoise, eval mode", secs, per, Some(flops));
    Ok(header)
}
