//! `tweedie eval`: PSNR/MSE vs σ on the run's training images and on held-out images, printed,
//! written to `eval.json`, plotted, and added to the run's report.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use tweedie::analysis::metrics::{denoising_table, noisy};
use tweedie::data::synthetic::{Family, GaussianField};
use tweedie::data::{DataSource, FolderOptions, Images};
use tweedie::denoise::{Denoiser, Wiener};
use tweedie::report::grid::{save_grid, Scaling};
use tweedie::report::run as run_report;
use tweedie::train::record::{EvalRecord, Origin, RunDir};
use tweedie::train::Weights;
use tweedie::DeviceSpec;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Run folder (from `tweedie train` or `tweedie import`).
    #[arg(long)]
    run: PathBuf,
    /// Held-out data [default: the run's own source's test set; required for an imported
    /// network: its test set, or a seeded tenth of it when the source has none].
    #[arg(long)]
    data: Option<String>,
    /// Noise levels, comma-separated (0.1 or 25/255).
    #[arg(long, value_delimiter = ',', value_parser = super::sigma_arg, default_value = "5/255,15/255,25/255,50/255,100/255")]
    sigmas: Vec<f32>,
    /// Images evaluated from each of train and test.
    #[arg(long, default_value_t = 256)]
    count: usize,
    /// Also evaluate the exact MMSE denoiser of the data's synthetic family on the same noisy
    /// held-out images (Gaussian fields: the Wiener filter; read from the .json beside the .npy).
    #[arg(long)]
    optimum: bool,
    /// Which weights: the moving average when the run keeps one, or the last ones.
    #[arg(long, value_enum, default_value_t = Weights::Ema)]
    weights: Weights,
    /// Noise seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Device: auto, cpu, wgpu[:N], cuda[:N] or tch.
    #[arg(long, default_value = "auto")]
    device: DeviceSpec,
}

pub fn run(a: EvalArgs) -> Result<()> {
    if a.sigmas.is_empty() || a.count == 0 {
        anyhow::bail!("give at least one noise level in --sigmas and --count ≥ 1");
    }
    let sigmas = &a.sigmas;
    let run = RunDir::new(&a.run);
    let device = a.device.device()?;
    let (denoiser, origin) = tweedie::train::load_network(&run, &device, a.weights)?;
    let record = match origin {
        Origin::Trained(record) => *record,
        Origin::Imported(_) => return eval_imported(&a, &denoiser, &origin, &run),
    };
    let data = record.config.data.resolve()?;
    let source = a.data.as_deref().unwrap_or(&record.config.data.source);
    let test = match &a.data {
        None => data.dataset.test.clone(),
        Some(spec) => {
            let options = FolderOptions {
                gray: record.config.data.gray,
                size: record.config.data.size,
            };
            let (test_size, split_seed) = (
                record.config.data.test_size,
                record.config.data.split.split_seed,
            );
            DataSource::parse(spec, options)?
                .load(test_size, split_seed)?
                .test
        }
    };
    let train = data.train.take(a.count);
    let test = test.take(a.count);
    let train_rows = denoising_table(&denoiser, &train, sigmas, a.seed)?;
    let test_rows = denoising_table(&denoiser, &test, sigmas, a.seed)?;
    let (optimum, blind_optimum, homogeneous_optimum) = match a.optimum {
        false => (None, None, None),
        true => {
            let family = Family::of_npy(std::path::Path::new(source)).with_context(|| {
                format!("--optimum: {source} is not a synthetic family's .npy with its .json")
            })?;
            let Family::Gaussian(field) = family else {
                bail!("--optimum: no closed-form optimal denoiser is known for {source}'s family");
            };
            let [_, _, h, w] = test.shape();
            if !field.exact_optimum_within_reach(h, w) {
                bail!(
                    "--optimum: {source} holds open-edged Gaussian fields of {h}×{w}; their exact \
                     Wiener filter needs the eigendecomposition of a {d}×{d} covariance (hours); \
                     it is computed up to {max}×{max} (generate larger fields with --boundary \
                     periodic)",
                    d = h * w,
                    max = GaussianField::MAX_OPEN_SIDE
                );
            }
            let oracle = Wiener::new(field.clone());
            let [blind, homogeneous] =
                tweedie::experiments::optimality::blind_optima(&field, &record.config);
            (
                Some(denoising_table(&oracle, &test, sigmas, a.seed)?),
                Some(denoising_table(&blind, &test, sigmas, a.seed)?),
                Some(denoising_table(&homogeneous, &test, sigmas, a.seed)?),
            )
        }
    };
    let eval = EvalRecord {
        train: train_rows,
        test: test_rows,
        optimum,
        blind_optimum,
        homogeneous_optimum,
        images: a.count,
        seed: a.seed,
    };
    print!(
        "{}",
        run_report::eval_summary(&eval, train.len(), test.len())
    );
    tweedie::io::write_json(&run.file("eval.json"), &eval)?;
    std::fs::create_dir_all(run.figures())?;
    examples(&denoiser, &test, sigmas, a.seed, &run)?;
    run_report::write(&run)?;
    println!(
        "wrote {} and {}",
        run.file("eval.json").display(),
        run.file("report.html").display()
    );
    Ok(())
}

/// An imported network on held-out images only (it was trained on data tweedie never saw, so
/// there is no training set to compare with); `eval.json` holds no training rows.
fn eval_imported(
    a: &EvalArgs,
    denoiser: &impl Denoiser,
    origin: &Origin,
    run: &RunDir,
) -> Result<()> {
    let Some(spec) = &a.data else {
        bail!(
            "{} holds an imported network: give the images to evaluate on with --data",
            run.root().display()
        );
    };
    if a.optimum {
        bail!("--optimum: an imported network was not trained on a synthetic family of ours");
    }
    let options = FolderOptions {
        gray: origin.image_channels() == 1,
        size: None,
    };
    let test = DataSource::parse(spec, options)?
        .load(None, a.seed)?
        .test
        .take(a.count);
    let rows = denoising_table(denoiser, &test, &a.sigmas, a.seed)?;
    println!(
        "PSNR in dB (peak 1) on {} held-out images of {spec}",
        test.len()
    );
    println!(
        "{:>8} {:>10} {:>10} {:>12}",
        "σ", "noisy", "denoised", "MSE"
    );
    for r in &rows {
        println!(
            "{:>8.4} {:>10.2} {:>10.2} {:>12.3e}",
            r.sigma, r.input_psnr, r.psnr, r.mse
        );
    }
    let eval = EvalRecord {
        train: Vec::new(),
        test: rows,
        optimum: None,
        blind_optimum: None,
        homogeneous_optimum: None,
        images: a.count,
        seed: a.seed,
    };
    tweedie::io::write_json(&run.file("eval.json"), &eval)?;
    println!("wrote {}", run.file("eval.json").display());
    Ok(())
}

/// A grid of held-out examples: per σ, a row of clean, noisy and denoised images.
fn examples(
    denoiser: &impl Denoiser,
    test: &Images,
    sigmas: &[f32],
    seed: u64,
    run: &RunDir,
) -> Result<()> {
    let clean = test.take(4);
    let mut tiles = Vec::new();
    for &s in sigmas {
        let y = noisy(&clean, s, seed);
        let denoised = denoiser.denoise(&y, Some(s))?;
        for i in 0..clean.len() {
            tiles.push(clean.select(&[i]));
            tiles.push(y.select(&[i]));
            tiles.push(denoised.select(&[i]));
        }
    }
    let grid = Images::concat(&tiles);
    let zoom = (64 / clean.shape()[2]).max(1);
    save_grid(
        &grid,
        3 * clean.len(),
        zoom,
        Scaling::Clamp,
        &run.figures().join("denoised.png"),
    )
    .context("writing figures/denoised.png")?;
    Ok(())
}
