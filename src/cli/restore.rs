//! `tweedie restore`: solve a linear inverse problem with the trained denoiser as prior
//! (constrained ascent). For each input image: the measurement Mᵀc, the restoration and, when a
//! reference is given, PSNR/SSIM and a side-by-side figure.

use super::operator::OperatorArgs;
use super::progress::Terminal;
use super::sampler::AscentArgs;
use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;
use std::path::{Path, PathBuf};
use tweedie::analysis::metrics::{mse, psnr_from_mse, ssim};
use tweedie::data::{image_files, load_image, FolderOptions, Images};
use tweedie::sampling::ascent::{restore, Constraint, Outcome};
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

#[derive(Serialize)]
struct Row {
    image: String,
    steps: usize,
    outcome: Outcome,
    psnr_naive: Option<f64>,
    psnr: Option<f64>,
    ssim: Option<f64>,
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
    let op = a.operator.build(shape, a.seed)?;
    let clean: Vec<Images> = inputs
        .iter()
        .map(|p| load_one(p, gray, shape, resize))
        .collect::<Result<_>>()?;
    let measurements: Vec<Vec<f32>> = clean.iter().map(|x| op.measure(x.image(0))).collect();
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    eprintln!("{} on {} image(s)", op.describe(), inputs.len());
    let params = a.ascent.restoration_params(16);
    let out = restore(
        &denoiser,
        shape,
        Constraint {
            op: op.as_ref(),
            measurements: &measurements,
        },
        &params,
        a.seed,
        &Terminal::new(),
    )?;
    let mut rows = Vec::new();
    for (k, path) in inputs.iter().enumerate() {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("image")
            .to_string();
        let naive = Images::new(
            op.adjoint(&measurements[k]),
            [1, shape[0], shape[1], shape[2]],
        );
        let restored = out.images.select(&[k]);
        let reference = match &a.reference {
            Some(r) if r.is_dir() => Some(load_one(
                &r.join(path.file_name().expect("file")),
                gray,
                shape,
                resize,
            )?),
            Some(r) => Some(load_one(r, gray, shape, resize)?),
            None => None,
        };
        tweedie::report::restore::write(&a.out, &stem, &naive, &restored, reference.as_ref())?;
        let score = |x: &Images, r: &Images| psnr_from_mse(mse(x.as_slice(), r.as_slice()));
        let psnr_naive = reference.as_ref().map(|r| score(&naive, r));
        let psnr = reference.as_ref().map(|r| score(&restored, r));
        let ss = reference
            .as_ref()
            .map(|r| ssim(restored.as_slice(), r.as_slice(), shape));
        let t = &out.trajectories[k];
        rows.push(Row {
            image: path.display().to_string(),
            steps: t.steps,
            outcome: t.outcome,
            psnr_naive,
            psnr,
            ssim: ss,
        });
    }
    for r in &rows {
        match (r.psnr, r.psnr_naive, r.ssim) {
            (Some(p), Some(n), Some(s)) => println!(
                "{}: PSNR {p:.2} dB (measurement Mᵀc: {n:.2} dB), SSIM {s:.3}, {} steps",
                r.image, r.steps
            ),
            _ => println!("{}: restored in {} steps", r.image, r.steps),
        }
    }
    if rows.iter().any(|r| r.outcome != Outcome::Converged) {
        eprintln!("warning: some restorations did not converge (see `outcome` in restore.json); raise --max-steps or lower --sigma0");
    }
    let summary = serde_json::json!({
        "task": op.describe(),
        "seed": a.seed,
        "ascent": params,
        "images": rows,
    });
    tweedie::io::write_json(&a.out.join("restore.json"), &summary)?;
    println!(
        "wrote {} (measurement, restored and compare PNGs, restore.json)",
        a.out.display()
    );
    Ok(())
}
