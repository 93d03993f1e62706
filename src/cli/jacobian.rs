//! `tweedie jacobian`: open a trained denoiser at a noisy image (see
//! [`tweedie::experiments::jacobian`]); writes the folder and its report, prints a summary.

use super::progress::Terminal;
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;
use tweedie::data::{load_image, FolderOptions, Images};
use tweedie::experiments::jacobian::{self, Config, JacobianDir, Method, Subject};
use tweedie::train::record::{Origin, RunDir};
use tweedie::DeviceSpec;

#[derive(Args, Debug)]
pub struct JacobianArgs {
    /// Run folder (from `tweedie train` or `tweedie import`).
    #[arg(long)]
    run: PathBuf,
    /// The clean image: `test:K` or `train:K` (image K of the run's data), or an image file
    /// (for an imported network: a file, at its own size).
    #[arg(long, default_value = "test:0")]
    image: String,
    /// Noise levels, comma-separated (0.1 or 25/255).
    #[arg(long, value_delimiter = ',', value_parser = super::sigma_arg, default_value = "0.05,0.1,0.2,0.4")]
    sigmas: Vec<f32>,
    /// Number of top eigenvectors to show and compare.
    #[arg(long, default_value_t = 32)]
    top: usize,
    /// How to compute the spectrum.
    #[arg(long, value_enum, default_value_t = Method::Auto)]
    method: Method,
    /// Lanczos iterations [default: 2·top + 20].
    #[arg(long)]
    iterations: Option<usize>,
    /// Hutchinson probe vectors (Lanczos method).
    #[arg(long, default_value_t = 64)]
    probes: usize,
    /// A second run (e.g. the `b` network of a study) to compare eigenvectors with.
    #[arg(long)]
    compare_run: Option<PathBuf>,
    /// Seed of the noise and of the random vectors.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Which weights: the moving average when the run keeps one, or the last ones.
    #[arg(long, value_enum, default_value_t = tweedie::train::Weights::Ema)]
    weights: tweedie::train::Weights,
    /// Device: auto, cpu, wgpu[:N], cuda[:N] or tch.
    #[arg(long, default_value = "auto")]
    device: DeviceSpec,
}

/// Image `test:K` / `train:K` of the run's data, or an image file at the run's size (an
/// imported network's: at the file's own).
fn clean_image(spec: &str, origin: &Origin) -> Result<Images> {
    if let Some((part @ ("test" | "train"), k)) = spec.split_once(':') {
        if let Ok(k) = k.parse::<usize>() {
            let Some(record) = origin.trained() else {
                bail!("--image {spec}: an imported network has no data of its own; give an image file");
            };
            let data = record.config.data.resolve()?;
            let set = if part == "test" {
                &data.dataset.test
            } else {
                &data.train
            };
            if k >= set.len() {
                bail!("--image {spec}: the {part} set has {} images", set.len());
            }
            return Ok(set.select(&[k]));
        }
    }
    let options = FolderOptions {
        gray: origin.image_channels() == 1,
        size: origin.image_shape().map(|[_, h, _]| h),
    };
    Ok(load_image(std::path::Path::new(spec), options)?)
}

pub fn run(a: JacobianArgs) -> Result<()> {
    let cfg = Config {
        sigmas: a.sigmas.clone(),
        top: a.top,
        method: a.method,
        iterations: a.iterations,
        probes: a.probes,
        seed: a.seed,
    };
    cfg.validate()?;
    let device = a.device.device()?;
    let (denoiser, origin) =
        tweedie::train::load_network(&RunDir::new(&a.run), &device, a.weights)?;
    let x = clean_image(&a.image, &origin)?;
    cfg.validate_for(x.dim())?;
    let other = match &a.compare_run {
        Some(r) => Some(tweedie::train::load_network(&RunDir::new(r), &device, a.weights)?.0),
        None => None,
    };
    let name = |p: &PathBuf| p.display().to_string();
    let subject = Subject {
        denoiser: (&denoiser, name(&a.run)),
        compare: other
            .as_ref()
            .zip(a.compare_run.as_ref())
            .map(|(o, p)| (o as _, name(p))),
        image: (x, a.image.clone()),
    };
    let dir = JacobianDir::new(&a.out);
    let rec = jacobian::run(&cfg, &subject, &dir, &Terminal::new())?;
    tweedie::report::jacobian::write(&dir, &rec)?;
    let d: usize = rec.image_shape.iter().product();
    for r in &rec.results {
        print!(
            "σ = {:.3}: tr J = {:.1} of D = {d}",
            r.sigma,
            r.effective_dimension()
        );
        if let (Some(s), Some(h)) = (r.asymmetry, r.homogeneity_error) {
            print!(", asymmetry {s:.3}, ‖Jy − f(y)‖/‖f(y)‖ = {h:.1e}");
        }
        if let Some(c) = &r.principal_cosines {
            let mean_sq = c.iter().map(|v| v * v).sum::<f64>() / c.len() as f64;
            print!(
                ", top-{} subspace overlap (mean cos²) {mean_sq:.3}",
                rec.top
            );
        }
        println!();
    }
    println!("wrote {}", a.out.display());
    Ok(())
}
