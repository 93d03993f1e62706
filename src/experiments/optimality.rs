//! Optimality and inductive bias (Kadkhodaie et al. 2024, §4–5): networks trained on image
//! classes whose optimal denoiser, or its error rate, is known. Where the class suits the
//! networks' inductive bias (geometry-adaptive harmonic bases) they reach the optimum; where it
//! does not, they fall short. One study per family, each a set of *arms* (one trained network
//! each, an ordinary run folder under `runs/`, so the study resumes run by run):
//!
//! - [`Study::Gaussian`]: stationary Gaussian fields, optimum the Wiener filter. MSE against the
//!   exact Wiener MSE; the Jacobian's eigenvalues against the Wiener gains p/(p + σ²), and the
//!   fraction of each top eigenvector in the Fourier band of the matching Wiener mode (the GAHB
//!   of a stationary class is the Fourier basis). Also the spectrum of the homogeneous blind
//!   optimum at the same image: the Wiener filter uses the field's known mean and amplitude,
//!   which no bias-free denoiser can, and along the mean the two differ by more than any
//!   tolerance on the network would allow.
//! - [`Study::CAlpha`]: C^α images, one arm per α. The optimal MSE decays as σ^(2α/(α+1)), so
//!   PSNR rises with slope α/(α+1) against −20·log₁₀σ: the fitted slope (with its standard error)
//!   over the configured σ range against α/(α+1), beside the same fit of the MMSE with the
//!   contour told ([`CAlpha::contour_known_mse`], spectral construction), a lower bound whose
//!   slope says whether the rate holds on this grid over that range.
//! - [`Study::Disks`]: a 5-parameter manifold. MSE against the numerical MMSE
//!   ([`DiskOracle`], whose Monte-Carlo accuracy is recorded); tr J against the dimension 5.
//! - [`Study::Shuffled`]: a real data set and the same set with one fixed pixel permutation,
//!   trained with the same N, seed and budget: the gap is what geometry is worth.
//!
//! Every arm also gets the classical reference [`DctShrinkage`] on the same noisy images, and
//! a Jacobian folder (`jacobian/<arm>/`, see [`super::jacobian`]) at one held-out image.

use super::dir::{Configured, Context, Experiment, ExperimentDir, FolderError, Run};
use super::jacobian::{self as jac, JacobianDir, JacobianError, Method, Subject};
use crate::analysis::metrics::{mse, noisy, psnr_from_mse};
use crate::analysis::rate::{fit_line, LineFit};
use crate::config::{check, InvalidField};
use crate::data::synthetic::{CAlpha, Construction, Disks, Family, GaussianField};
use crate::data::{load_npy, DataError, Images};
use crate::denoise::disks::Accuracy;
use crate::denoise::{DctShrinkage, DenoiseError, Denoiser, DiskOracle, Linearize, Wiener};
use crate::progress::Progress;
use crate::rng::{derive, name_key, Purpose};
use crate::train::record::{RunDir, RunState};
use crate::train::{self, TrainConfig, TrainError, Weights};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Which family the study is about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum Study {
    /// Stationary Gaussian fields with this spectrum.
    Gaussian {
        /// The field.
        field: GaussianField,
    },
    /// C^α images, one arm per α.
    #[serde(rename = "calpha")]
    CAlpha {
        /// Regularities.
        alphas: Vec<f64>,
        /// How the images are drawn.
        #[serde(default = "Construction::recorded_before")]
        construction: Construction,
    },
    /// Disks on a background.
    Disks,
    /// A data set and its pixel-shuffled copy.
    Shuffled {
        /// The data source (as `tweedie train --data`).
        data: String,
    },
}

/// The configuration of an optimality study (`optimality_config.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The family.
    pub study: Study,
    /// Side of the synthetic images (ignored by the shuffled control).
    pub size: usize,
    /// Training images N per arm.
    pub train_images: usize,
    /// Training settings shared by every arm (network, recipe, steps); data and seed are set
    /// per arm.
    pub train: TrainConfig,
    /// Noise levels of the MSE measurements.
    pub sigmas: Vec<f32>,
    /// Held-out images measured per σ.
    pub eval_count: usize,
    /// Noise levels at which the Jacobian is opened.
    pub jacobian_sigmas: Vec<f32>,
    /// Eigenvectors kept and compared.
    pub top: usize,
    /// C^α: the σ range [lo, hi] of the slope fit.
    pub fit_range: [f32; 2],
    /// Disks: importance samples per image of the MMSE oracle.
    pub oracle_samples: usize,
    /// The classical reference.
    pub baseline: Baseline,
    /// Seed of data, runs, noise and oracle draws.
    pub seed: u64,
}

/// The classical reference's settings ([`DctShrinkage`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Patch side.
    pub patch: usize,
    /// Hard threshold in units of σ.
    pub threshold: f32,
}

impl Default for Baseline {
    fn default() -> Self {
        let d = DctShrinkage::default();
        Self {
            patch: d.patch,
            threshold: d.threshold,
        }
    }
}

/// One trained network of the study and the images it learns from.
#[derive(Clone, Debug, PartialEq)]
pub struct Arm {
    /// Folder name (`gaussian`, `alpha-2`, `disks`, `original`, `shuffled`).
    pub name: String,
    /// Where its images come from.
    pub data: ArmData,
}

/// The images of an arm.
#[derive(Clone, Debug, PartialEq)]
pub enum ArmData {
    /// Generated into `data/<arm>.npy`.
    Synthetic(Family),
    /// A data source, its pixels permuted or not.
    Source {
        /// The source.
        spec: String,
        /// Whether the pixels are shuffled.
        shuffled: bool,
    },
}

/// Errors of the optimality study.
#[derive(Debug, thiserror::Error)]
pub enum OptimalityError {
    /// A bad setting.
    #[error("invalid optimality setting")]
    Invalid(#[from] InvalidField),
    /// Training an arm failed.
    #[error("run {run}")]
    Train {
        /// The arm.
        run: String,
        /// Why.
        source: TrainError,
    },
    /// Data.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Denoising.
    #[error(transparent)]
    Denoise(#[from] DenoiseError),
    /// The Jacobian.
    #[error(transparent)]
    Jacobian(#[from] JacobianError),
    /// Files.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The study's folder: its lock, configuration or record.
    #[error(transparent)]
    Folder(#[from] FolderError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OptimalityError + '_ {
    move |source| OptimalityError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The optimality study as an [`Experiment`]: its folder holds `optimality_config.json`,
/// `data/`, `runs/`, `jacobian/`, `optimality.json`, figures and `report.html`.
pub struct Optimality;

impl Experiment for Optimality {
    const NAME: &'static str = "optimality study";
    const RECORD_FILE: &'static str = "optimality.json";
    type Config = Config;
    type Record = Record;
}

impl Configured for Optimality {
    const CONFIG_FILE: &'static str = "optimality_config.json";
}

impl Run for Optimality {
    type Error = OptimalityError;
    /// Trains and measures on the configuration's own device (`train.device`, recorded with
    /// each arm's run), not the context's.
    fn run(
        cfg: &Config,
        dir: &OptimalityDir,
        ctx: &Context<'_>,
    ) -> Result<Record, OptimalityError> {
        run(cfg, dir, ctx.progress)
    }
}

/// An optimality folder.
pub type OptimalityDir = ExperimentDir<Optimality>;

impl OptimalityDir {
    /// The generated images of an arm.
    pub fn data(&self, arm: &str) -> PathBuf {
        self.root().join("data").join(format!("{arm}.npy"))
    }
    /// The run folder of an arm.
    pub fn run(&self, arm: &str) -> RunDir {
        RunDir::new(self.root().join("runs").join(arm))
    }
    /// The Jacobian folder of an arm.
    pub fn jacobian(&self, arm: &str) -> JacobianDir {
        JacobianDir::new(self.root().join("jacobian").join(arm))
    }
}

impl Config {
    /// A study of `study`'s family with networks of `net`, and the defaults: 32×32 images,
    /// 10 000 training images per network trained to convergence (at most
    /// [`AUTO_CAP`](crate::train::AUTO_CAP) steps of 32, σ up to 0.5, which covers the measured
    /// σ; the rest `tweedie train`'s recipe), MSE at σ = 1/255, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4
    /// on 256 held-out images, the Jacobian at σ = 0.1 (disks: 0.02, 0.05, 0.1, 0.2, 0.4) with
    /// 32 eigenvectors, the C^α slope fitted over σ ∈ [0.02, 0.2], 2000 importance samples per
    /// image for the disks' oracle. [`Self::quick`] and [`TrainConfig::replan`] change the
    /// budget.
    pub fn new(
        study: Study,
        net: crate::nn::NetConfig,
        seed: u64,
        device: crate::DeviceSpec,
    ) -> Config {
        use crate::train::{DataConfig, Steps, AUTO_CAP};
        let mut data = DataConfig::new("");
        data.split.split_seed = seed;
        let mut train =
            TrainConfig::new(data, net, AUTO_CAP, 32, seed, device).replan(Steps::Auto(AUTO_CAP));
        train.sigma_max = 0.5;
        let jacobian_sigmas = match study {
            Study::Disks => vec![0.02, 0.05, 0.1, 0.2, 0.4],
            _ => vec![0.1],
        };
        Config {
            study,
            size: 32,
            train_images: 10_000,
            train,
            sigmas: vec![1.0 / 255.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4],
            eval_count: 256,
            jacobian_sigmas,
            top: 32,
            fit_range: [0.02, 0.2],
            oracle_samples: 2000,
            baseline: Baseline::default(),
            seed,
        }
    }

    /// The smoke-test settings (`--quick`): 16×16 images, a few σ, 80 steps of an 8-channel
    /// network — minutes become seconds, the numbers mean little.
    pub fn quick(&mut self) {
        self.size = 16;
        self.train_images = 256;
        self.eval_count = 16;
        self.sigmas = vec![0.02, 0.05, 0.1, 0.2];
        self.jacobian_sigmas.truncate(2);
        self.top = 8;
        self.oracle_samples = 200;
        self.train.batch = 16;
        self.train.net.channels = 8;
        self.train.val_count = 16;
        self.train.min_epoch = 256;
        self.train = self.train.replan(crate::train::Steps::Fixed(80));
    }

    /// Checks everything before any work.
    pub fn validate(&self) -> Result<(), InvalidField> {
        let positive = |v: &[f32]| !v.is_empty() && v.iter().all(|s| s.is_finite() && *s > 0.0);
        check(
            positive(&self.sigmas),
            "sigmas",
            format!("{:?}", self.sigmas),
            "must list positive noise levels",
        )?;
        check(
            positive(&self.jacobian_sigmas),
            "jacobian_sigmas",
            format!("{:?}", self.jacobian_sigmas),
            "must list positive noise levels",
        )?;
        check(self.size >= 8, "size", self.size, "must be 8 or more")?;
        check(
            self.train_images >= 1,
            "train_images",
            self.train_images,
            "must be ≥ 1",
        )?;
        check(
            self.eval_count >= 1,
            "eval_count",
            self.eval_count,
            "must be ≥ 1",
        )?;
        check(self.top >= 1, "top", self.top, "must be ≥ 1")?;
        check(
            self.oracle_samples >= 10,
            "oracle_samples",
            self.oracle_samples,
            "must be ≥ 10",
        )?;
        let [lo, hi] = self.fit_range;
        check(
            lo > 0.0 && hi > lo,
            "fit_range",
            format!("{lo},{hi}"),
            "must be two noise levels lo < hi",
        )?;
        check(
            self.baseline.patch >= 2,
            "patch",
            self.baseline.patch,
            "must be ≥ 2",
        )?;
        match &self.study {
            Study::CAlpha {
                alphas,
                construction,
            } => {
                check(!alphas.is_empty(), "alphas", "", "must list at least one α")?;
                for &alpha in alphas {
                    let construction = *construction;
                    Family::CAlpha(CAlpha {
                        alpha,
                        construction,
                    })
                    .generate(8, 1, 0)
                    .map_err(|e| match e {
                        DataError::Invalid(f) => InvalidField {
                            field: "alphas",
                            ..f
                        },
                        other => InvalidField {
                            field: "alphas",
                            value: alpha.to_string(),
                            expected: other.to_string(),
                        },
                    })?;
                }
            }
            Study::Gaussian { field } => {
                Family::Gaussian(field.clone())
                    .generate(8, 1, 0)
                    .map_err(|e| match e {
                        DataError::Invalid(f) => f,
                        other => InvalidField {
                            field: "gamma",
                            value: field.gamma.to_string(),
                            expected: other.to_string(),
                        },
                    })?;
                check(
                    field.exact_optimum_within_reach(self.size, self.size),
                    "size",
                    self.size,
                    format!(
                        "must be at most {} for open-edged Gaussian fields, whose exact Wiener \
                         filter needs the eigendecomposition of a size² × size² covariance \
                         (hours at 128); use --boundary periodic for larger ones",
                        GaussianField::MAX_OPEN_SIDE
                    ),
                )?;
            }
            Study::Disks | Study::Shuffled { .. } => {}
        }
        self.train.validate()
    }

    /// The arms, in order.
    pub fn arms(&self) -> Vec<Arm> {
        let synthetic = |name: String, family| Arm {
            name,
            data: ArmData::Synthetic(family),
        };
        match &self.study {
            Study::Gaussian { field } => {
                vec![synthetic(
                    "gaussian".into(),
                    Family::Gaussian(field.clone()),
                )]
            }
            Study::CAlpha {
                alphas,
                construction,
            } => alphas
                .iter()
                .map(|&alpha| {
                    let family = Family::CAlpha(CAlpha {
                        alpha,
                        construction: *construction,
                    });
                    synthetic(format!("alpha-{alpha}"), family)
                })
                .collect(),
            Study::Disks => vec![synthetic("disks".into(), Family::Disks(Disks {}))],
            Study::Shuffled { data } => [("original", false), ("shuffled", true)]
                .map(|(name, shuffled)| Arm {
                    name: name.into(),
                    data: ArmData::Source {
                        spec: data.clone(),
                        shuffled,
                    },
                })
                .to_vec(),
        }
    }

    /// The training configuration of an arm. The two arms of the shuffled control share their
    /// seed (initialisation, batch order, noise): they differ by the permutation alone.
    pub fn arm_config(&self, dir: &OptimalityDir, arm: &Arm) -> TrainConfig {
        let mut cfg = self.train.clone();
        let identity = match &arm.data {
            ArmData::Synthetic(_) => {
                cfg.data.source = dir.data(&arm.name).display().to_string();
                cfg.data.test_size = Some(self.eval_count);
                cfg.data.split.train_size = None;
                cfg.data.shuffle_pixels = None;
                name_key(&arm.name)
            }
            ArmData::Source { spec, shuffled } => {
                cfg.data.source = spec.clone();
                cfg.data.split.train_size = Some(self.train_images);
                cfg.data.shuffle_pixels =
                    shuffled.then(|| derive(self.seed, Purpose::PixelShuffle, &[]));
                name_key("shuffled-control")
            }
        };
        cfg.seed = derive(self.seed, Purpose::StudyArm, &[identity]);
        cfg
    }
}

/// One noise level of one arm: MSE per pixel of each denoiser on the same noisy images.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    /// Noise level.
    pub sigma: f32,
    /// The network.
    pub network: f64,
    /// The optimal denoiser, where one is computed (Wiener, disk MMSE).
    pub optimum: Option<f64>,
    /// The Monte-Carlo oracle's accuracy (disks).
    pub optimum_accuracy: Option<Accuracy>,
    /// Gaussian: the blind optimum, the posterior mean for σ unknown under the prior the
    /// network was trained on ([`Wiener::blind_optimum`]).
    #[serde(default)]
    pub blind_optimum: Option<f64>,
    /// Gaussian: the homogeneous blind optimum, the same with the field's scale unknown too:
    /// the best f with f(a·y) = a·f(y), a bias-free network's bound
    /// ([`Wiener::homogeneous_optimum`]).
    #[serde(default)]
    pub homogeneous_optimum: Option<f64>,
    /// Gaussian: the network's σ inference — quartiles over the images of σ′/σ, σ′ the noise
    /// level whose Wiener filter comes nearest the network's output
    /// ([`GaussianField::nearest_wiener_sigma`]).
    #[serde(default)]
    pub effective_sigma: Option<[f64; 3]>,
    /// Gaussian: the MSE of the Wiener filter at each image's σ′: the part of the network's
    /// excess over the optimum that its σ inference alone explains.
    #[serde(default)]
    pub wiener_at_effective_sigma: Option<f64>,
    /// C^α (spectral): the MMSE with the contour told, a lower bound on the optimum, in closed
    /// form over fresh draws of the family ([`CAlpha::contour_known_mse`]).
    #[serde(default)]
    pub contour_known: Option<f64>,
    /// The classical reference.
    pub baseline: f64,
    /// The noisy input (≈ σ²).
    pub noisy: f64,
}

/// A fitted PSNR-vs-(−20·log₁₀σ) slope against the optimal rate α/(α+1).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Slope {
    /// The optimal slope α/(α + 1).
    pub optimal: f64,
    /// The network's fit.
    pub network: Option<LineFit>,
    /// The classical reference's fit.
    pub baseline: Option<LineFit>,
    /// The contour-known bound's fit: where the rate holds on this grid, it is α/(α+1).
    #[serde(default)]
    pub contour_known: Option<LineFit>,
    /// The σ range fitted.
    pub range: [f32; 2],
}

/// The Jacobian at one σ, summarised (the full record is in `jacobian/<arm>/`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JacobianSummary {
    /// Noise level.
    pub sigma: f32,
    /// tr J, the effective dimensionality.
    pub trace: f64,
    /// Top eigenvalues of (J + Jᵀ)/2, descending.
    pub eigenvalues: Vec<f64>,
    /// Gaussian: the top Wiener gains p/(p + σ²), descending.
    pub optimal_eigenvalues: Option<Vec<f64>>,
    /// Gaussian: tr of the Wiener filter's Jacobian.
    pub optimal_trace: Option<f64>,
    /// Gaussian: the fraction of each top eigenvector's energy along the Wiener filter's
    /// eigenvectors within a factor 2^(γ/2) of the variance of its mode of the same rank: the
    /// octave of radial frequencies around that mode's for a periodic field
    /// ([`crate::data::synthetic::Covariance::band_fraction`]).
    pub band_fractions: Option<Vec<f64>>,
    /// Gaussian: cosines of the principal angles between the network's and the Wiener
    /// filter's top eigenvectors.
    pub principal_cosines: Option<Vec<f64>>,
    /// Gaussian: the same image's spectrum for the homogeneous blind optimum
    /// ([`Wiener::homogeneous_optimum`]), the best a bias-free denoiser can do — the reference
    /// that the network's class can reach, where the Wiener filter (which knows the field's
    /// mean and amplitude) is not. Its folder is `jacobian/<arm>-homogeneous/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homogeneous: Option<BiasFreeSpectrum>,
}

/// The homogeneous blind optimum's Jacobian at the network's image and noise.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BiasFreeSpectrum {
    /// Top eigenvalues of (J + Jᵀ)/2, descending.
    pub eigenvalues: Vec<f64>,
    /// tr J.
    pub trace: f64,
    /// Cosines of the principal angles between its top eigenvectors and the network's.
    pub principal_cosines: Vec<f64>,
}

/// What was measured for one arm.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ArmRecord {
    /// Arm name.
    pub name: String,
    /// The run folder, relative to the study.
    pub run: String,
    /// What the optimum is (or `None`).
    pub optimum: Option<String>,
    /// The classical reference.
    pub baseline: String,
    /// Training images.
    pub train_images: usize,
    /// Held-out images measured.
    pub eval_images: usize,
    /// One row per σ, in the configuration's order.
    pub rows: Vec<Row>,
    /// C^α: the rate.
    pub slope: Option<Slope>,
    /// One per Jacobian σ.
    pub jacobian: Vec<JacobianSummary>,
    /// Seconds to measure this arm.
    pub measure_seconds: f64,
}

/// `optimality.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// The configuration.
    pub config: Config,
    /// The tool's version.
    pub tweedie_version: String,
    /// One per arm.
    pub arms: Vec<ArmRecord>,
}

impl Record {
    /// The arm of this name.
    pub fn arm(&self, name: &str) -> Option<&ArmRecord> {
        self.arms.iter().find(|a| a.name == name)
    }
}

/// Generates the images of a synthetic arm, unless they are there.
fn ensure_data(cfg: &Config, dir: &OptimalityDir, arm: &Arm) -> Result<(), OptimalityError> {
    let ArmData::Synthetic(family) = &arm.data else {
        return Ok(());
    };
    let path = dir.data(&arm.name);
    if path.exists() && Family::of_npy(&path).as_ref() == Some(family) {
        let n = load_npy(&path)?.len();
        if n == cfg.train_images + cfg.eval_count {
            return Ok(());
        }
    }
    let seed = derive(cfg.seed, Purpose::Synth, &[name_key(&arm.name)]);
    let images = family.generate(cfg.size, cfg.train_images + cfg.eval_count, seed)?;
    std::fs::create_dir_all(path.parent().expect("data/ has a parent")).map_err(io(&path))?;
    family.save(&images, seed, &path).map_err(io(&path))
}

/// Generates and trains whatever is missing (finished runs are kept).
pub fn train_all(
    cfg: &Config,
    dir: &OptimalityDir,
    progress: &dyn Progress,
) -> Result<Vec<(String, RunState)>, OptimalityError> {
    cfg.validate()?;
    dir.write_config(cfg)?;
    let mut states = Vec::new();
    for arm in cfg.arms() {
        ensure_data(cfg, dir, &arm)?;
        let tc = cfg.arm_config(dir, &arm);
        progress.log(&format!("training {}", arm.name));
        let state =
            train::ensure_trained(&tc, &dir.run(&arm.name), progress).map_err(|source| {
                OptimalityError::Train {
                    run: arm.name.clone(),
                    source,
                }
            })?;
        states.push((arm.name.clone(), state));
    }
    Ok(states)
}

/// Trains what is missing, measures every arm, writes `optimality.json`.
pub fn run(
    cfg: &Config,
    dir: &OptimalityDir,
    progress: &dyn Progress,
) -> Result<Record, OptimalityError> {
    let _lock = dir.lock()?;
    train_all(cfg, dir, progress)?;
    let mut arms = Vec::new();
    for arm in cfg.arms() {
        progress.log(&format!("measuring {}", arm.name));
        arms.push(measure(cfg, dir, &arm, progress)?);
    }
    let record = Record {
        config: cfg.clone(),
        tweedie_version: env!("CARGO_PKG_VERSION").into(),
        arms,
    };
    dir.write_record(&record)?;
    Ok(record)
}

/// Fresh images over which the C^α contour-known bound is averaged (each costs an
/// eigendecomposition of a D × D matrix).
const CONTOUR_KNOWN_DRAWS: usize = 64;

/// The optimal denoiser of an arm, where one is computed.
enum Optimum {
    Wiener(Wiener, GaussianField),
    Disks(DiskOracle),
}

impl Optimum {
    fn of(cfg: &Config, arm: &Arm) -> Option<Optimum> {
        match &arm.data {
            ArmData::Synthetic(Family::Gaussian(field)) => {
                Some(Optimum::Wiener(Wiener::new(field.clone()), field.clone()))
            }
            ArmData::Synthetic(Family::Disks(_)) => Some(Optimum::Disks(DiskOracle::new(
                cfg.oracle_samples,
                derive(cfg.seed, Purpose::Oracle, &[]),
            ))),
            _ => None,
        }
    }

    fn name(&self) -> String {
        match self {
            Optimum::Wiener(w, _) => format!("{} (exact MMSE)", w.name()),
            Optimum::Disks(d) => d.name(),
        }
    }

    fn denoise(&self, y: &Images, sigma: f32) -> Result<(Images, Option<Accuracy>), DenoiseError> {
        match self {
            Optimum::Wiener(w, _) => Ok((w.denoise(y, Some(sigma))?, None)),
            Optimum::Disks(d) => {
                let (x, acc) = d.denoise_with_accuracy(y, sigma)?;
                Ok((x, Some(acc)))
            }
        }
    }
}

fn measure(
    cfg: &Config,
    dir: &OptimalityDir,
    arm: &Arm,
    progress: &dyn Progress,
) -> Result<ArmRecord, OptimalityError> {
    let start = Instant::now();
    let tc = cfg.arm_config(dir, arm);
    let data = tc.data.resolve()?;
    let test = data.dataset.test.take(cfg.eval_count);
    let run = dir.run(&arm.name);
    let device = tc.device.device().map_err(|e| OptimalityError::Train {
        run: arm.name.clone(),
        source: e.into(),
    })?;
    let (net, _) = train::load_weights(&run, &device, Weights::Ema).map_err(|source| {
        OptimalityError::Train {
            run: arm.name.clone(),
            source,
        }
    })?;
    let baseline = DctShrinkage {
        patch: cfg.baseline.patch,
        threshold: cfg.baseline.threshold,
    };
    let optimum = Optimum::of(cfg, arm);
    let blind = match &arm.data {
        ArmData::Synthetic(Family::Gaussian(field)) => Some(blind_optima(field, &tc)),
        _ => None,
    };
    let contour_known = match &arm.data {
        ArmData::Synthetic(Family::CAlpha(c)) => {
            let sigmas: Vec<f64> = cfg.sigmas.iter().map(|&s| s as f64).collect();
            let draws = cfg.eval_count.min(CONTOUR_KNOWN_DRAWS);
            let seed = derive(cfg.seed, Purpose::Oracle, &[c.alpha.to_bits()]);
            c.contour_known_mse(cfg.size, &sigmas, draws, seed)
        }
        _ => None,
    };
    let mut rows = Vec::new();
    progress.start(&format!("{}: σ", arm.name), cfg.sigmas.len() as u64);
    for (i, &sigma) in cfg.sigmas.iter().enumerate() {
        let y = noisy(&test, sigma, cfg.seed);
        let err = |x: &Images| mse(x.as_slice(), test.as_slice());
        let (opt, accuracy) = match &optimum {
            Some(o) => {
                let (x, acc) = o.denoise(&y, sigma)?;
                (Some(err(&x)), acc)
            }
            None => (None, None),
        };
        let [blind_optimum, homogeneous_optimum] = match &blind {
            Some([b, h]) => [
                Some(err(&b.denoise(&y, None)?)),
                Some(err(&h.denoise(&y, None)?)),
            ],
            None => [None, None],
        };
        let denoised = net.denoise(&y, Some(sigma))?;
        let (effective_sigma, wiener_at_effective_sigma) = match &arm.data {
            ArmData::Synthetic(Family::Gaussian(field)) => {
                let (q, e) = effective_sigma(field, &y, &denoised, &test, sigma);
                (Some(q), Some(e))
            }
            _ => (None, None),
        };
        rows.push(Row {
            sigma,
            network: err(&denoised),
            optimum: opt,
            optimum_accuracy: accuracy,
            blind_optimum,
            homogeneous_optimum,
            effective_sigma,
            wiener_at_effective_sigma,
            contour_known: contour_known.as_ref().map(|b| b[i]),
            baseline: err(&baseline.denoise(&y, Some(sigma))?),
            noisy: err(&y),
        });
        progress.update(i as u64 + 1, "");
    }
    progress.finish();
    let slope = match &arm.data {
        ArmData::Synthetic(Family::CAlpha(c)) => Some(slope(&rows, c.alpha, cfg.fit_range)),
        _ => None,
    };
    let homogeneous = blind.as_ref().map(|[_, h]| h);
    let jacobian = open_jacobian(cfg, dir, arm, &net, &optimum, homogeneous, &test, progress)?;
    Ok(ArmRecord {
        name: arm.name.clone(),
        run: format!("runs/{}", arm.name),
        optimum: optimum.as_ref().map(Optimum::name),
        baseline: baseline.name(),
        train_images: data.train.len(),
        eval_images: test.len(),
        rows,
        slope,
        jacobian,
        measure_seconds: start.elapsed().as_secs_f64(),
    })
}

/// Quartiles of σ′/σ over the images (σ′: the Wiener filter nearest the network's output, searched
/// over σ/16 … 16σ) and the MSE of the Wiener filter at each image's σ′.
fn effective_sigma(
    field: &GaussianField,
    y: &Images,
    denoised: &Images,
    clean: &Images,
    sigma: f32,
) -> ([f64; 3], f64) {
    let [_, _, h, w] = y.shape();
    let s = sigma as f64;
    let found: Vec<(f64, f64)> = (0..y.len())
        .into_par_iter()
        .map(|i| {
            let e = field.nearest_wiener_sigma(
                y.image(i),
                denoised.image(i),
                h,
                w,
                [s / 16.0, 16.0 * s],
            );
            let at = field.wiener(y.image(i), h, w, e);
            (e / s, mse(&at, clean.image(i)))
        })
        .collect();
    let mut ratios: Vec<f64> = found.iter().map(|f| f.0).collect();
    ratios.sort_by(f64::total_cmp);
    let q = |p: f64| ratios[((ratios.len() - 1) as f64 * p).round() as usize];
    let err = found.iter().map(|f| f.1).sum::<f64>() / found.len() as f64;
    ([q(0.25), q(0.5), q(0.75)], err)
}

/// PSNR against −20·log₁₀σ over the rows in `range`: the C^α rate's slope is α/(α+1).
pub fn slope(rows: &[Row], alpha: f64, range: [f32; 2]) -> Slope {
    let inside: Vec<&Row> = rows
        .iter()
        .filter(|r| r.sigma >= range[0] && r.sigma <= range[1])
        .collect();
    let x: Vec<f64> = inside
        .iter()
        .map(|r| -20.0 * (r.sigma as f64).log10())
        .collect();
    let fit = |f: &dyn Fn(&Row) -> f64| {
        let y: Vec<f64> = inside.iter().map(|r| psnr_from_mse(f(r))).collect();
        fit_line(&x, &y)
    };
    Slope {
        optimal: alpha / (alpha + 1.0),
        network: fit(&|r| r.network),
        baseline: fit(&|r| r.baseline),
        contour_known: inside
            .iter()
            .all(|r| r.contour_known.is_some())
            .then(|| fit(&|r| r.contour_known.unwrap_or(f64::NAN)))
            .flatten(),
        range,
    }
}

/// Opens the network (and for Gaussian fields the Wiener filter and the homogeneous blind
/// optimum) at the first held-out image.
#[allow(clippy::too_many_arguments)]
fn open_jacobian(
    cfg: &Config,
    dir: &OptimalityDir,
    arm: &Arm,
    net: &dyn Linearize,
    optimum: &Option<Optimum>,
    homogeneous: Option<&Wiener>,
    test: &Images,
    progress: &dyn Progress,
) -> Result<Vec<JacobianSummary>, OptimalityError> {
    let x = test.take(1);
    let [_, _, h, w] = x.shape();
    let d = x.dim();
    let jcfg = jac::Config {
        sigmas: cfg.jacobian_sigmas.clone(),
        top: cfg.top.min(d),
        // dense is exact and cheap up to 32×32; beyond, Lanczos keeps a study within minutes
        method: if d <= 1024 {
            Method::Dense
        } else {
            Method::Lanczos
        },
        iterations: None,
        probes: 64,
        seed: cfg.seed,
    };
    let wiener = match optimum {
        Some(Optimum::Wiener(w, field)) => Some((w, field)),
        _ => None,
    };
    let subject = Subject {
        denoiser: (net, format!("runs/{}", arm.name)),
        compare: wiener.map(|(w, _)| (w as &dyn Linearize, "the Wiener filter".to_string())),
        image: (x, format!("test:0 of {}", arm.name)),
    };
    let jdir = dir.jacobian(&arm.name);
    let record = jac::run(&jcfg, &subject, &jdir, progress)?;
    // the bias-free bound's own spectrum, compared with the network's eigenvectors (its
    // Jacobian by central differences: 2·D posterior means, seconds at 32×32)
    let bias_free = match homogeneous {
        Some(h) => {
            let subject = Subject {
                denoiser: (h as &dyn Linearize, "the homogeneous blind optimum".into()),
                compare: Some((net, format!("runs/{}", arm.name))),
                image: subject.image.clone(),
            };
            let hdir = dir.jacobian(&format!("{}-homogeneous", arm.name));
            Some(jac::run(&jcfg, &subject, &hdir, progress)?)
        }
        None => None,
    };
    let mut out = Vec::new();
    for (j, r) in record.results.iter().enumerate() {
        let top = record.top.min(r.eigenvalues.len());
        let mut summary = JacobianSummary {
            sigma: r.sigma,
            trace: r.effective_dimension(),
            eigenvalues: r.eigenvalues[..top].to_vec(),
            optimal_eigenvalues: None,
            optimal_trace: None,
            band_fractions: None,
            principal_cosines: r.principal_cosines.clone(),
            homogeneous: bias_free.as_ref().map(|b| {
                let r = &b.results[j];
                BiasFreeSpectrum {
                    eigenvalues: r.eigenvalues[..top.min(r.eigenvalues.len())].to_vec(),
                    trace: r.effective_dimension(),
                    principal_cosines: r.principal_cosines.clone().unwrap_or_default(),
                }
            }),
        };
        if let Some((_, field)) = wiener {
            let covariance = field.covariance(h, w);
            let gains = covariance.wiener_gain(r.sigma as f64);
            let mut order: Vec<usize> = (0..gains.len()).collect();
            order.sort_by(|a, b| gains[*b].total_cmp(&gains[*a]));
            summary.optimal_trace = Some(gains.iter().sum());
            summary.optimal_eigenvalues = Some(order[..top].iter().map(|&k| gains[k]).collect());
            let vectors = load_npy(&jdir.eigenvectors(j))?;
            // the modes within a factor 2^(γ/2) of each mode's variance: its octave of scales
            let spread = 2f64.powf(field.gamma / 2.0);
            summary.band_fractions = Some(
                (0..top.min(vectors.len()))
                    .map(|k| {
                        let p = covariance.variances[order[k]];
                        covariance.band_fraction(vectors.image(k), [p / spread, p * spread])
                    })
                    .collect(),
            );
        }
        out.push(summary);
    }
    Ok(out)
}

/// The blind and the homogeneous blind optimum of a Gaussian field for networks trained with
/// `cfg` ([`crate::denoise::Wiener::blind_optimum`], [`crate::denoise::Wiener::homogeneous_optimum`]):
/// the bounds a blind, and a blind bias-free, denoiser trained that way cannot beat on average.
/// The homogeneous one takes a coarser σ grid (160 points, not 400): it is crossed with 61
/// scales.
pub fn blind_optima(
    field: &crate::data::synthetic::GaussianField,
    cfg: &crate::train::TrainConfig,
) -> [crate::denoise::Wiener; 2] {
    use crate::denoise::Wiener;
    [
        Wiener::blind_optimum(field.clone(), &cfg.fitted_sigma_prior(400)),
        Wiener::homogeneous_optimum(field.clone(), &cfg.fitted_sigma_prior(160)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(sigma: f32, network: f64) -> Row {
        Row {
            sigma,
            network,
            optimum: None,
            optimum_accuracy: None,
            blind_optimum: None,
            homogeneous_optimum: None,
            effective_sigma: None,
            wiener_at_effective_sigma: None,
            contour_known: None,
            baseline: 2.0 * network,
            noisy: (sigma as f64).powi(2),
        }
    }

    /// MSE = c·σ^(2α/(α+1)) exactly: the fit returns α/(α+1) with no error, for the network
    /// and for a reference a constant factor worse; rows outside the range are ignored.
    #[test]
    fn the_slope_of_an_exact_rate_is_recovered() {
        let alpha = 2.0;
        let mut rows: Vec<Row> = [0.01f32, 0.02, 0.05, 0.1, 0.2]
            .iter()
            .map(|&s| row(s, 0.3 * (s as f64).powf(2.0 * alpha / (alpha + 1.0))))
            .collect();
        rows.push(row(0.5, 1.0));
        let fit = slope(&rows, alpha, [0.01, 0.2]);
        let net = fit.network.unwrap();
        assert!(
            (net.slope - 2.0 / 3.0).abs() < 1e-9 && net.stderr < 1e-9,
            "{net:?}"
        );
        assert_eq!(net.points, 5);
        assert!((fit.baseline.unwrap().slope - 2.0 / 3.0).abs() < 1e-9);
        assert!((fit.optimal - 2.0 / 3.0).abs() < 1e-12);
    }
}
