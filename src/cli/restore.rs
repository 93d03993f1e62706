//! `tweedie restore`: solve a linear inverse problem with the trained denoiser as prior
//! (constrained ascent). For each input image: the measurement Mᵀc, the restoration and, when a
//! reference is given, PSNR/SSIM and a side-by-side figure.

use super::operator::OperatorArgs;
use super::progress::Terminal;
use super::sampler::AscentArgs;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use tweedie::data::{image_files, load_image, FolderOptions, Images};
use tweedie::experiments::dir::ExperimentDir;
use tweedie::experiments::restore::{self, Config, Input, Restore};
use tweedie::sampling::ascent::Outcome;
use tweedie::train::record::RunDir;

use tweedie::DeviceSpec;

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Run folder (from `tweedie train` or `tweedie import`).
    #[arg(long)]
    run: PathBuf,
    #[command(flatten)]
    operator: OperatorArgs,
    /// The image to measure and restore.
    #[arg(long)]
    input: Option<PathBuf>,
    /// A folder of images to measure and restore.
    #[arg(long)]
    input_folder: Option<PathBuf>,
    /// Ground truth (file, or folder with the same names) for PSNR/SSIM.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Seed of the sampler's noise (and of random masks/projections).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    ascent: AscentArgs,
    /// Which weights: the moving average when the run keeps one, or the last ones.
    #[arg(long, value_enum, default_value_t = tweedie::train::Weights::Ema)]
    weights: tweedie::train::Weights,
    /// Device: auto, cpu, wgpu[:N], cuda[:N] or tch.
    #[arg(long, default_value = "auto")]
    device: DeviceSpec,
}

/// The image at `path` in `shape`; `resize`: brought to the run's (square) training size first.
fn load_one(path: &Path, gray: bool, shape: [usize; 3], resize: bool) -> Result<Images> {
    let img = load_image(
        path,
        FolderOptions {
            gray,
            size: resize.then_some(shape[1]),
        },
    )?;
    if img.image_shape() != shape {
        bail!(
            "{}: image is {:?}, the network wants {:?}",
            path.display(),
            img.image_shape(),
            shape
        );
    }
    Ok(img)
}

pub fn run(a: RestoreArgs) -> Result<()> {
    let run = RunDir::new(&a.run);
    let device = a.device.device()?;
    let (denoiser, origin) = tweedie::train::load_network(&run, &device, a.weights)?;
    let gray = origin.image_channels() == 1;
    let inputs: Vec<PathBuf> = match (&a.input, &a.input_folder) {
        (Some(f), None) => vec![f.clone()],
        (None, Some(d)) => {
            let files = image_files(d)?;
            if files.is_empty() {
                bail!("{}: no images to restore", d.display());
            }
            files
        }
        _ => bail!("give exactly one of --input or --input-folder"),
    };
    // a trained run restores images of its training size; an imported (convolutional) network
    // those of the first input's
    let shape = match origin.image_shape() {
        Some(shape) => shape,
        None => load_image(&inputs[0], FolderOptions { gray, size: None })?.image_shape(),
    };
    let resize = origin.image_shape().is_some();
    let reference = |path: &Path| -> Result<Option<Images>> {
        Ok(match &a.reference {
            Some(r) if r.is_dir() => Some(load_one(
                &r.join(path.file_name().expect("a file")),
                gray,
                shape,
                resize,
            )?),
            Some(r) => Some(load_one(r, gray, shape, resize)?),
            None => None,
        })
    };
    let inputs: Vec<Input> = inputs
        .iter()
        .map(|path| {
            Ok(Input {
                name: path.display().to_string(),
                clean: load_one(path, gray, shape, resize)?,
                reference: reference(path)?,
            })
        })
        .collect::<Result<_>>()?;
    let cfg = Config {
        task: a.operator.task()?,
        ascent: a.ascent.restoration_params(16),
        seed: a.seed,
    };
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let (record, restored) = restore::run(&cfg, &denoiser, &inputs, &Terminal::new())?;
    for (input, r) in inputs.iter().zip(&restored) {
        let stem = Path::new(&input.name)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("image");
        let reference = input.reference.as_ref();
        tweedie::report::restore::write(&a.out, stem, &r.naive, &r.restored, reference)?;
    }
    for r in &record.images {
        match (r.psnr, r.psnr_naive, r.ssim) {
            (Some(p), Some(n), Some(s)) => println!(
                "{}: PSNR {p:.2} dB (measurement Mᵀc: {n:.2} dB), SSIM {s:.3}, {} steps",
                r.image, r.steps
            ),
            _ => println!("{}: restored in {} steps", r.image, r.steps),
        }
    }
    if record
        .images
        .iter()
        .any(|r| r.outcome != Outcome::Converged)
    {
        eprintln!("warning: some restorations did not converge (see `outcome` in restore.json); raise --max-steps or lower --sigma0");
    }
    ExperimentDir::<Restore>::new(&a.out).write_record(&record)?;
    println!(
        "wrote {} (measurement, restored and compare PNGs, restore.json)",
        a.out.display()
    );
    Ok(())
}
