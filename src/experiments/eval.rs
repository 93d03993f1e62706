//! A run's denoising quality: PSNR and MSE against σ on its training images and on held-out
//! ones — their gap is what memorization costs — beside the exact optimum where the data's
//! synthetic family has one (Gaussian fields: the Wiener filter, and the blind and homogeneous
//! optima a blind bias-free network is bounded by). An imported network was trained on images
//! tweedie never saw, so it is measured on held-out images only. `eval.json` in the run folder.

use super::dir::{Experiment, ExperimentDir, FolderError};
use crate::analysis::metrics::denoising_table;
use crate::config::{check, InvalidField};
use crate::data::synthetic::{Family, GaussianField};
use crate::data::{DataError, DataSource, FolderOptions, Images};
use crate::denoise::{DenoiseError, Learned, Wiener};
use crate::train::record::{EvalRecord, Origin, RunDir, RunRecord};
use crate::train::{TrainError, Weights};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What to measure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Noise levels.
    pub sigmas: Vec<f32>,
    /// Images evaluated from each of train and test.
    pub count: usize,
    /// Also the exact MMSE denoiser of the data's synthetic family on the same noisy images.
    pub optimum: bool,
    /// Which weights of the run.
    pub weights: Weights,
    /// Seed of the noise.
    pub seed: u64,
    /// Held-out data other than the run's own source's test set (required for an imported
    /// network: its test set, or a seeded tenth of it when the source has none).
    pub data: Option<String>,
}

impl Default for Config {
    /// σ = 5, 15, 25, 50, 100 /255 on 256 images of each set, the moving average's weights.
    fn default() -> Self {
        Self {
            sigmas: [5.0, 15.0, 25.0, 50.0, 100.0].map(|s| s / 255.0).to_vec(),
            count: 256,
            optimum: false,
            weights: Weights::Ema,
            seed: 0,
            data: None,
        }
    }
}

impl Config {
    /// Checks the settings before the run is loaded.
    pub fn validate(&self) -> Result<(), InvalidField> {
        check(
            !self.sigmas.is_empty() && self.sigmas.iter().all(|s| s.is_finite() && *s > 0.0),
            "sigmas",
            format!("{:?}", self.sigmas),
            "must list positive noise levels",
        )?;
        check(self.count >= 1, "count", self.count, "must be ≥ 1")
    }
}

/// Errors of an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A bad setting.
    #[error("invalid evaluation setting")]
    Invalid(#[from] InvalidField),
    /// Loading the run.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// Loading the data.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Denoising.
    #[error(transparent)]
    Denoise(#[from] DenoiseError),
    /// An imported network and no held-out data named.
    #[error("{0} holds an imported network: name the images to evaluate it on (data)")]
    ImportedNeedsData(PathBuf),
    /// The optimum asked for where none is known or within reach.
    #[error("optimum: {0}")]
    NoOptimum(String),
    /// Writing `eval.json`.
    #[error(transparent)]
    Folder(#[from] FolderError),
}

/// The evaluation as an [`Experiment`]: its record is `eval.json` in the run folder.
pub struct Eval;

impl Experiment for Eval {
    const NAME: &'static str = "evaluation";
    const RECORD_FILE: &'static str = "eval.json";
    type Config = Config;
    type Record = EvalRecord;
}

/// What an evaluation measured, with the examples its figure shows.
pub struct Evaluation {
    /// The record (`eval.json`).
    pub record: EvalRecord,
    /// Training images measured (none for an imported network).
    pub train_images: usize,
    /// Held-out images measured.
    pub test_images: usize,
    /// The first [`EXAMPLES`] held-out images, per σ a row of clean, noisy and denoised
    /// copies (the noise of the evaluation's seed), row after row.
    pub examples: Images,
}

/// Held-out images the examples show.
pub const EXAMPLES: usize = 4;

impl Evaluation {
    /// Images in one row of [`Self::examples`]: a clean, noisy and denoised copy of each.
    pub fn examples_per_row(&self) -> usize {
        3 * self.test_images.min(EXAMPLES)
    }
}

/// Per σ, clean, noisy and denoised copies of the first [`EXAMPLES`] images of `test`.
fn examples(
    denoiser: &Learned,
    test: &Images,
    sigmas: &[f32],
    seed: u64,
) -> Result<Images, DenoiseError> {
    use crate::denoise::Denoiser;
    let clean = test.take(EXAMPLES);
    let mut tiles = Vec::new();
    for &s in sigmas {
        let y = crate::analysis::metrics::noisy(&clean, s, seed);
        let denoised = denoiser.denoise(&y, Some(s))?;
        for i in 0..clean.len() {
            tiles.extend([clean.select(&[i]), y.select(&[i]), denoised.select(&[i])]);
        }
    }
    Ok(Images::concat(&tiles))
}

/// Measures the run in `run` and writes `eval.json` there.
pub fn run(
    cfg: &Config,
    run: &RunDir,
    device: &burn::tensor::Device,
) -> Result<Evaluation, EvalError> {
    cfg.validate()?;
    let (denoiser, origin) = crate::train::load_network(run, device, cfg.weights)?;
    let (train, test, optimum) = match &origin {
        Origin::Trained(record) => trained_sets(cfg, record)?,
        Origin::Imported(_) => {
            let Some(spec) = &cfg.data else {
                return Err(EvalError::ImportedNeedsData(run.root().to_path_buf()));
            };
            if cfg.optimum {
                return Err(EvalError::NoOptimum(
                    "an imported network was not trained on a synthetic family of ours".into(),
                ));
            }
            let options = FolderOptions {
                gray: origin.image_channels() == 1,
                size: None,
            };
            let test = DataSource::parse(spec, options)?.load(None, cfg.seed)?.test;
            (test.take(0), test.take(cfg.count), None)
        }
    };
    let table = |images: &Images| -> Result<_, EvalError> {
        match images.is_empty() {
            true => Ok(Vec::new()),
            false => Ok(denoising_table(&denoiser, images, &cfg.sigmas, cfg.seed)?),
        }
    };
    let mut record = EvalRecord {
        train: table(&train)?,
        test: table(&test)?,
        optimum: None,
        blind_optimum: None,
        homogeneous_optimum: None,
        images: cfg.count,
        seed: cfg.seed,
    };
    if let Some((field, recipe)) = optimum {
        let oracle = Wiener::new(field.clone());
        let [blind, homogeneous] = super::optimality::blind_optima(&field, &recipe.config);
        record.optimum = Some(denoising_table(&oracle, &test, &cfg.sigmas, cfg.seed)?);
        record.blind_optimum = Some(denoising_table(&blind, &test, &cfg.sigmas, cfg.seed)?);
        record.homogeneous_optimum =
            Some(denoising_table(&homogeneous, &test, &cfg.sigmas, cfg.seed)?);
    }
    ExperimentDir::<Eval>::new(run.root()).write_record(&record)?;
    Ok(Evaluation {
        record,
        train_images: train.len(),
        test_images: test.len(),
        examples: examples(&denoiser, &test, &cfg.sigmas, cfg.seed)?,
    })
}

/// A trained run's training images, its held-out images (its own source's, or `cfg.data`'s),
/// and, when the optimum is asked for, the Gaussian field its data were drawn from.
type Sets = (Images, Images, Option<(GaussianField, Box<RunRecord>)>);

fn trained_sets(cfg: &Config, record: &RunRecord) -> Result<Sets, EvalError> {
    let data = record.config.data.resolve()?;
    let source = cfg.data.as_deref().unwrap_or(&record.config.data.source);
    let test = match &cfg.data {
        None => data.dataset.test.clone(),
        Some(spec) => {
            let options = FolderOptions {
                gray: record.config.data.gray,
                size: record.config.data.size,
            };
            let data = &record.config.data;
            DataSource::parse(spec, options)?
                .load(data.test_size, data.split.split_seed)?
                .test
        }
    };
    let test = test.take(cfg.count);
    let optimum = match cfg.optimum {
        false => None,
        true => Some((gaussian_field(source, &test)?, Box::new(record.clone()))),
    };
    Ok((data.train.take(cfg.count), test, optimum))
}

/// The Gaussian field behind `source` (a synthetic family's .npy with its .json), if its exact
/// optimum is within reach at the test images' size.
fn gaussian_field(source: &str, test: &Images) -> Result<GaussianField, EvalError> {
    let family = Family::of_npy(Path::new(source)).ok_or_else(|| {
        EvalError::NoOptimum(format!(
            "{source} is not a synthetic family's .npy with its .json"
        ))
    })?;
    let Family::Gaussian(field) = family else {
        return Err(EvalError::NoOptimum(format!(
            "no closed-form optimal denoiser is known for {source}'s family"
        )));
    };
    let [_, _, h, w] = test.shape();
    if !field.exact_optimum_within_reach(h, w) {
        return Err(EvalError::NoOptimum(format!(
            "{source} holds open-edged Gaussian fields of {h}×{w}; their exact Wiener filter \
             needs the eigendecomposition of a {d}×{d} covariance (hours); it is computed up to \
             {max}×{max} (generate larger fields with periodic boundaries)",
            d = h * w,
            max = GaussianField::MAX_OPEN_SIDE
        )));
    }
    Ok(field)
}
