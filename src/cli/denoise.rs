//! `tweedie denoise`: one image, a folder of them, or a .npy batch in; denoised images out.

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
    /// Run folder (from `tweedie train` or `tweedie import`).
    #[arg(long)]
    run: PathBuf,
    /// A noisy image, a folder of them, or a .npy array ([n, c, h, w] or [n, h, w] float32,
    /// values as the network was trained on: [0, 1]).
    #[arg(long)]
    input: PathBuf,
    /// Output image (for one input), folder (for a folder; same file names) or .npy (for a
    /// .npy: the denoised array, [n, c, h, w] float32).
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
    let (denoiser, origin) = tweedie::train::load_network(&run, &device, a.weights)?;
    if is_npy(&a.input) {
        return denoise_npy(&a, &denoiser, origin.image_channels());
    }
    let opts = FolderOptions {
        gray: origin.image_channels() == 1,
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

fn is_npy(p: &std::path::Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

/// The .npy path: one array in, one array out, number for number (no clamping or rounding to
/// 8 bits, so outputs compare with another implementation's).
fn denoise_npy(a: &DenoiseArgs, denoiser: &impl Denoiser, channels: usize) -> Result<()> {
    if !is_npy(&a.output) {
        bail!(
            "--output {}: a .npy input is denoised into a .npy; name the output *.npy",
            a.output.display()
        );
    }
    let mut y = tweedie::data::load_npy(&a.input)?;
    if y.shape()[1] != channels {
        bail!(
            "{}: {} channels per image, the network takes {channels}",
            a.input.display(),
            y.shape()[1]
        );
    }
    if let Some(s) = a.add_noise {
        y = add_noise(&y, s, a.seed);
        let noisy = a.output.with_extension("noisy.npy");
        tweedie::data::write_npy(&y, &noisy)?;
    }
    let x_hat = denoiser.denoise(&y, a.add_noise)?;
    tweedie::data::write_npy(&x_hat, &a.output)?;
    println!(
        "{} -> {} ({} images)",
        a.input.display(),
        a.output.display(),
        x_hat.len()
    );
    Ok(())
}
