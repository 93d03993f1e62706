//! `tweedie data synth …`: generate a synthetic family as `.npy` + preview PNG + JSON sidecar.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use tweedie::data::synthetic::{Boundary, CAlpha, Construction, Disks, Family, GaussianField};
use tweedie::report::grid::{save_grid, Scaling};

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Generate a synthetic image family (writes OUT.npy, OUT.png preview, OUT.json parameters).
    Synth(SynthArgs),
    /// Write images of a data source as PNG files (e.g. test images to restore).
    Export(ExportArgs),
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Part {
    /// The held-out test images.
    Test,
    /// The pool the training splits are drawn from.
    Pool,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Data source (as for `tweedie train --data`).
    #[arg(long)]
    data: String,
    /// Which part of the source.
    #[arg(long, value_enum, default_value_t = Part::Test)]
    part: Part,
    /// Number of images (from the start).
    #[arg(long, default_value_t = 16)]
    count: usize,
    /// Image folders: convert to grayscale.
    #[arg(long)]
    gray: bool,
    /// Image folders: centre-crop and resize.
    #[arg(long)]
    size: Option<usize>,
    /// Output folder (files 00000.png, 00001.png, …).
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum FamilyName {
    /// Stationary Gaussian field, spectrum ∝ 1/|f|^γ (exact Wiener denoiser known).
    Gaussian,
    /// C^α regions separated by C^α contours.
    Calpha,
    /// Disks: random centre, radius, foreground, background (a 5-parameter manifold).
    Disks,
}

#[derive(Args, Debug)]
pub struct SynthArgs {
    /// Family to draw from.
    #[arg(value_enum)]
    family: FamilyName,
    /// Image side in pixels.
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Number of images.
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Output .npy file (a .png preview and a .json with the parameters are written beside it).
    #[arg(long)]
    out: PathBuf,
    /// Seed; image k is drawn from stream (seed, k).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Gaussian: spectral exponent γ.
    #[arg(long, default_value_t = 2.0)]
    gamma: f64,
    /// Gaussian: pixel standard deviation.
    #[arg(long, default_value_t = 0.15)]
    sd: f64,
    /// Gaussian: mean intensity.
    #[arg(long, default_value_t = 0.5)]
    mean: f64,
    /// Gaussian: open edges (a window of a field twice the size, as a photograph is) or
    /// periodic ones (one period of the field: opposite edges correlated).
    #[arg(long, value_enum, default_value_t = Boundary::Open)]
    boundary: Boundary,
    /// C^α: regularity α in (0, 8].
    #[arg(long, default_value_t = 1.0)]
    alpha: f64,
    /// C^α: Gaussian processes with power-law spectra and area-sampled edges, or the first
    /// construction's B-spline sums with hard pixel edges.
    #[arg(long, value_enum, default_value_t = Construction::Spectral)]
    construction: Construction,
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Synth(a) => synth(a),
        DataCommand::Export(a) => export(a),
    }
}

fn export(a: ExportArgs) -> Result<()> {
    let source = tweedie::data::DataSource::parse(
        &a.data,
        tweedie::data::FolderOptions {
            gray: a.gray,
            size: a.size,
        },
    )?;
    let data = source.load(None, 0)?;
    let images = match a.part {
        Part::Test => data.test,
        Part::Pool => data.pool,
    };
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let n = a.count.min(images.len());
    for i in 0..n {
        tweedie::report::grid::save_image(
            &images.select(&[i]),
            &a.out.join(format!("{i:05}.png")),
        )?;
    }
    println!("wrote {n} images to {}", a.out.display());
    Ok(())
}

fn synth(a: SynthArgs) -> Result<()> {
    let family = match a.family {
        FamilyName::Gaussian => Family::Gaussian(GaussianField {
            gamma: a.gamma,
            mean: a.mean,
            sd: a.sd,
            boundary: a.boundary,
        }),
        FamilyName::Calpha => Family::CAlpha(CAlpha {
            alpha: a.alpha,
            construction: a.construction,
        }),
        FamilyName::Disks => Family::Disks(Disks {}),
    };
    let images = family.generate(a.size, a.count, a.seed)?;
    let out = if a.out.extension().is_some_and(|e| e == "npy") {
        a.out.clone()
    } else {
        a.out.with_extension("npy")
    };
    family
        .save(&images, a.seed, &out)
        .with_context(|| format!("writing {}", out.display()))?;
    let preview = images.take(64);
    save_grid(
        &preview,
        8,
        (96 / a.size).max(1),
        Scaling::Clamp,
        &out.with_extension("png"),
    )?;
    println!(
        "wrote {} ({} images of {}×{}), preview {}",
        out.display(),
        a.count,
        a.size,
        a.size,
        out.with_extension("png").display()
    );
    Ok(())
}
