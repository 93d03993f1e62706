//! `tweedie denoise`: one image or a folder in, denoised images out.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use tweedie::analysis::metrics::add_noise;
use tweedie::data::{image_files, load_image, FolderOptions};
use tweedie::denoise::Denoiser;
use tweedie::report::grid::save_image;
use tweedie::train::record::RunDir;
use tweedie::DeviceSpec;

#[derive(Args, Debug)]
pub struct DenoiseArgs {
    /// Run folder (from `tweedie train`).
    #[arg(long)]
    run: PathBuf,
    /// A noisy image, or a folder of them.
    #[arg(long)]
    input: PathBuf,
    /// Output image (for one input) or folder (for a folder; same file names).
    #[arg(long)]
    output: PathBuf,
    /// Add Gaussian noise of this level first (to try the denoiser on clean images).
    #[arg(long, value_parser = super::sigma_arg)]
    add_noise: Option<f32>,
    /// Seed of the added noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Which weights: the moving average when the run keeps one, or the last ones.
    #[arg(long, value_enum, default_value_t = tweedie::train::Weights::Ema)]
    weights: tweedie::train::Weights,
    /// Device: auto, cpu, wgpu[:N], cuda[:N] or tch.
    #[arg(long, default_value = "auto")]
    device: DeviceSpec,
}

pub fn run(a: DenoiseArgs) -> Result<()> {
    let run = RunDir::new(&a.run);
    let device = a.device.device()?;
    let (denoiser, record) = tweedie::train::load_weights(&run, &device, a.weights)?;
    let opts = FolderOptions {
        gray: record.image_shape[0] == 1,
        size: None,
    };
    let jobs: Vec<(PathBuf, PathBuf)> = if a.input.is_dir() {
        let files = image_files(&a.input)?;
        if files.is_empty() {
            bail!("{}: no image files to denoise", a.input.display());
        }
        std::fs::create_dir_all(&a.output)
            .with_context(|| format!("creating {}", a.output.display()))?;
        files
            .into_iter()
            .map(|f| {
                let out = a.output.join(f.file_name().expect("a file"));
                (f, out)
            })
            .collect()
    } else {
        vec![(a.input.clone(), a.output.clone())]
    };
    for (input, output) in &jobs {
        let mut y = load_image(input, opts)?;
        if let Some(s) = a.add_noise {
            y = add_noise(&y, s, a.seed);
            let noisy = output.with_file_name(format!(
                "{}-noisy.png",
                output
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("image")
            ));
            save_image(&y, &noisy)?;
        }
        let x_hat = denoiser.denoise(&y, a.add_noise)?;
        save_image(&x_hat, output)?;
        println!("{} -> {}", input.display(), output.display());
    }
    Ok(())
}
