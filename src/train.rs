//! Blind training of a bias-free denoiser (Mohan et al. 2020; Kadkhodaie et al. 2024):
//! y = x + σz with σ drawn per image from [σ_min, σ_max] ([`SigmaSampling`]), the network
//! predicts the noise, loss ‖net(y) − (y − x)‖² summed over pixels, weighted by a function of σ
//! ([`LossWeighting`]) and averaged over the batch, Adam with a learning-rate plan over the
//! run's steps ([`LrSchedule`]), and optionally an exponential moving average of the weights
//! ([`crate::nn::ema`]) kept beside them.
//!
//! Extending a finished run (`steps` raised on resume) re-plans the schedule over the new total:
//! the steps already taken stay as they were, and the rest follow the plan the run would have
//! had, had it been started with the new total (cosine: lr(t) for the new T; step halving: the
//! halving period scaled by new/old steps, see [`TrainConfig::extend`]).
//!
//! Everything random is counter-based ([`crate::rng`]): the images of step s come from the
//! permutation of their epoch, the noise of step s from stream (seed, TrainNoise, s). So a run
//! resumed from a checkpoint at step k continues exactly as the uninterrupted run would.

use crate::analysis::metrics::{denoising_table, DenoisingRow};
use crate::config::{check, InvalidField};
use crate::data::{split, DataError, DataSource, Dataset, FolderOptions, Images, SplitSpec};
use crate::denoise::{DenoiseError, Learned};
use crate::device::{DeviceError, DeviceSpec};
use crate::nn::checkpoint::{self, CheckpointError, TrainState};
use crate::nn::{Mode, NetConfig};
use crate::progress::Progress;
use crate::rng::{derive, stream, Purpose};
use crate::run::{MetricsLine, RunDir, RunRecord, RunState};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// Where the training images come from and which of them are used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataConfig {
    /// Source spelling (see [`DataSource::parse`]).
    pub source: String,
    /// Image folders: convert to grayscale.
    pub gray: bool,
    /// Image folders: centre-crop and resize to this size.
    pub size: Option<usize>,
    /// Hold-out size for sources without a test file (`None`: a tenth, at most 1000).
    pub test_size: Option<usize>,
    /// Which training set.
    pub split: SplitSpec,
    /// Rearrange every image's pixels by one fixed permutation drawn from this seed (pool and
    /// test alike): the shuffled-pixel control of the optimality study, whose images keep their
    /// per-pixel statistics but lose their geometry. Runs written before this field: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shuffle_pixels: Option<u64>,
}

/// The fixed pixel permutation of `h × w` images drawn from `seed`.
pub fn pixel_permutation(h: usize, w: usize, seed: u64) -> Vec<usize> {
    let mut perm: Vec<usize> = (0..h * w).collect();
    perm.shuffle(&mut stream(seed, Purpose::PixelShuffle, 0));
    perm
}

/// How each image's squared error ‖net(y) − σz‖² enters the loss, as a function of its σ.
///
/// The plain sum (the paper's objective) is dominated by the noisiest images, since the error
/// grows like σ²: on a short budget the network then denoises low noise worse than doing
/// nothing, and a sampler, which ends at low noise, inherits that. Dividing by σ balances the
/// levels; dividing by σ² makes every level count alike. Both are scaled to weigh 1 at σ_max,
/// with a floor of σ_max/100 under σ so that nearly clean images do not dominate instead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LossWeighting {
    /// Plain squared error (the paper's): weight 1.
    #[default]
    Uniform,
    /// Weight σ_max / (σ + σ_max/100).
    InvSigma,
    /// Weight σ_max² / (σ + σ_max/100)².
    InvVariance,
}

impl LossWeighting {
    /// The weight of an image with noise level `sigma` when training over [·, `sigma_max`].
    pub fn weight(self, sigma: f32, sigma_max: f32) -> f32 {
        let relative = sigma / sigma_max + 0.01;
        match self {
            Self::Uniform => 1.0,
            Self::InvSigma => 1.0 / relative,
            Self::InvVariance => 1.0 / (relative * relative),
        }
    }
}

/// What training does when the loss becomes NaN or infinite.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OnNan {
    /// Stop with an error; the last checkpoint is intact (runs before this field).
    #[default]
    Stop,
    /// Reload the last checkpoint (or the initial weights), halve the learning rate from there
    /// on and continue; recorded in `metrics.jsonl`. At most [`MAX_ROLLBACKS`] times.
    Rollback,
}

/// Rollbacks a run may take before a non-finite loss stops it anyway.
pub const MAX_ROLLBACKS: u32 = 5;

/// The learning rate over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LrSchedule {
    /// Halved every `lr_halve_every` steps (the paper's code; runs before the cosine plan).
    #[default]
    Step,
    /// Linear warm-up over `lr_warmup` steps, then a half cosine from lr to 0 at the last step.
    Cosine,
}

/// How the noise level of each training image is drawn from [σ_min, σ_max].
///
/// Uniform σ (the paper's) gives few images at the low noise levels a sampler ends at and the
/// samplers and evaluations probe; log-uniform spreads them evenly over scales. Log-uniform
/// draws start at max(σ_min, σ_max/256), so σ = 0 is never drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SigmaSampling {
    /// σ uniform in [σ_min, σ_max].
    #[default]
    Uniform,
    /// log σ uniform in [log max(σ_min, σ_max/256), log σ_max].
    LogUniform,
    /// Half of the images uniform, half log-uniform.
    Mixture,
}

impl SigmaSampling {
    /// One draw.
    pub fn draw(self, rng: &mut impl Rng, sigma_min: f32, sigma_max: f32) -> f32 {
        let uniform = |rng: &mut dyn rand::RngCore| {
            if sigma_max > sigma_min {
                rng.random_range(sigma_min..sigma_max)
            } else {
                sigma_max
            }
        };
        let log_uniform = |rng: &mut dyn rand::RngCore| {
            let lo = sigma_min.max(sigma_max / 256.0);
            if sigma_max > lo {
                rng.random_range(lo.ln()..sigma_max.ln()).exp()
            } else {
                sigma_max
            }
        };
        match self {
            Self::Uniform => uniform(rng),
            Self::LogUniform => log_uniform(rng),
            Self::Mixture => {
                if rng.random::<bool>() {
                    uniform(rng)
                } else {
                    log_uniform(rng)
                }
            }
        }
    }

    /// The probability density of [`SigmaSampling::draw`] at σ (per unit of σ), for a range of
    /// positive width.
    pub fn density(self, sigma: f64, sigma_min: f64, sigma_max: f64) -> f64 {
        let inside = |lo: f64| (lo..=sigma_max).contains(&sigma) && sigma_max > lo;
        let uniform = if inside(sigma_min) {
            1.0 / (sigma_max - sigma_min)
        } else {
            0.0
        };
        let lo = sigma_min.max(sigma_max / 256.0);
        let log_uniform = if inside(lo) && sigma > 0.0 {
            1.0 / (sigma * (sigma_max / lo).ln())
        } else {
            0.0
        };
        match self {
            Self::Uniform => uniform,
            Self::LogUniform => log_uniform,
            Self::Mixture => 0.5 * (uniform + log_uniform),
        }
    }
}

/// The blind and the homogeneous blind optimum of a Gaussian field for networks trained with
/// `cfg` ([`crate::denoise::Wiener::blind_optimum`], [`crate::denoise::Wiener::homogeneous_optimum`]):
/// the bounds a blind, and a blind bias-free, denoiser trained that way cannot beat on average.
/// The homogeneous one takes a coarser σ grid (160 points, not 400): it is crossed with 61
/// scales.
pub fn blind_optima(
    field: &crate::data::synthetic::GaussianField,
    cfg: &TrainConfig,
) -> [crate::denoise::Wiener; 2] {
    use crate::denoise::Wiener;
    [
        Wiener::blind_optimum(field.clone(), &fitted_sigma_prior(cfg, 400)),
        Wiener::homogeneous_optimum(field.clone(), &fitted_sigma_prior(cfg, 160)),
    ]
}

/// The prior over σ that a blind denoiser trained with `cfg` is fitted to: the density of its
/// σ draws times its loss weight, as masses on `points` noise levels log-spaced from σ_max/10⁴
/// to σ_max (what lies below carries under 10⁻⁴ of the mass). Minimizing E[w(σ)‖f(y) − x‖²]
/// gives f(y) = E[w(σ) x | y] / E[w(σ) | y]: the posterior mean under this prior, which
/// [`crate::denoise::Wiener::blind_optimum`] computes for Gaussian fields.
pub fn fitted_sigma_prior(cfg: &TrainConfig, points: usize) -> Vec<(f64, f64)> {
    let (min, max) = (cfg.sigma_min as f64, cfg.sigma_max as f64);
    if max <= min {
        return vec![(max, 1.0)];
    }
    let (a, b) = ((max * 1e-4).max(min).ln(), max.ln());
    let step = (b - a) / points as f64;
    (0..points)
        .map(|i| {
            let sigma = (a + (i as f64 + 0.5) * step).exp();
            let density = cfg.sigma_sampling.density(sigma, min, max);
            let weight = cfg.loss_weighting.weight(sigma as f32, cfg.sigma_max) as f64;
            (sigma, density * weight * sigma * step)
        })
        .filter(|&(_, mass)| mass > 0.0)
        .collect()
}

/// A resolved training set with the dataset it was drawn from.
pub struct TrainingData {
    /// The settings it was resolved from.
    pub config: DataConfig,
    /// Pool and test set.
    pub dataset: Dataset,
    /// Indices of the training images in the pool.
    pub indices: Vec<usize>,
    /// The training images.
    pub train: Images,
}

impl DataConfig {
    /// All of `source` (no hold-out size, no split size, no de-duplication, pixels as they
    /// are), split `a` of split seed 0; set the fields to narrow it.
    pub fn new(source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            gray: false,
            size: None,
            test_size: None,
            split: SplitSpec {
                train_size: None,
                split: crate::data::Split::A,
                split_seed: 0,
                dedup: None,
            },
            shuffle_pixels: None,
        }
    }

    /// Loads the source and draws the training set.
    pub fn resolve(&self) -> Result<TrainingData, DataError> {
        let source = DataSource::parse(
            &self.source,
            FolderOptions {
                gray: self.gray,
                size: self.size,
            },
        )?;
        let mut dataset = source.load(self.test_size, self.split.split_seed)?;
        if let Some(seed) = self.shuffle_pixels {
            let [_, _, h, w] = dataset.pool.shape();
            let perm = pixel_permutation(h, w, seed);
            dataset.pool = dataset.pool.permute_pixels(&perm);
            dataset.test = dataset.test.permute_pixels(&perm);
            dataset.fingerprint = format!("{}:pixels-shuffled-{seed}", dataset.fingerprint);
        }
        let indices = split::select(&dataset.pool, &self.split)?;
        let train = dataset.pool.select(&indices);
        Ok(TrainingData {
            config: self.clone(),
            dataset,
            indices,
            train,
        })
    }
}

/// The whole resolved configuration of a training run (written to `config.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Data.
    pub data: DataConfig,
    /// Network.
    pub net: NetConfig,
    /// Optimizer steps.
    pub steps: u64,
    /// Images per step.
    pub batch: usize,
    /// Initial Adam learning rate.
    pub lr: f64,
    /// Halve the learning rate every this many steps ([`LrSchedule::Step`]).
    pub lr_halve_every: u64,
    /// The learning-rate plan (runs written before this field existed halved it).
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// Steps of linear warm-up from lr/warmup to lr ([`LrSchedule::Cosine`]).
    #[serde(default)]
    pub lr_warmup: u64,
    /// How each image's σ is drawn (runs written before this field existed: uniform).
    #[serde(default)]
    pub sigma_sampling: SigmaSampling,
    /// Decay β of the moving average of the weights (`None`: none kept; older runs).
    #[serde(default)]
    pub ema: Option<f64>,
    /// Smallest training noise level.
    pub sigma_min: f32,
    /// Largest training noise level.
    pub sigma_max: f32,
    /// Weight of each image's squared error as a function of its noise level (runs written
    /// before this field existed used the plain sum).
    #[serde(default)]
    pub loss_weighting: LossWeighting,
    /// Seed of initialisation, batch order and noise.
    pub seed: u64,
    /// What a non-finite loss does (runs written before this field: stop).
    #[serde(default)]
    pub on_nan: OnNan,
    /// Write a checkpoint every this many steps.
    pub checkpoint_every: u64,
    /// Validate and log every this many steps.
    pub log_every: u64,
    /// Noise levels of the validation PSNR.
    pub val_sigmas: Vec<f32>,
    /// Number of held-out images used for validation.
    pub val_count: usize,
    /// Small training sets are repeated until an epoch holds at least this many images.
    pub min_epoch: usize,
    /// Device.
    pub device: DeviceSpec,
}

impl TrainConfig {
    /// A configuration with the default recipe (README, Training quality): Adam at 10⁻³ on a
    /// cosine plan with steps/50 warm-up, σ ∈ [0, 1] drawn half uniformly, half log-uniformly,
    /// losses weighted by 1/σ, no moving average; a checkpoint every 250 steps, a log line every
    /// steps/20, validation at σ = 15, 50, 100/255 on 64 held-out images.
    pub fn new(
        data: DataConfig,
        net: NetConfig,
        steps: u64,
        batch: usize,
        seed: u64,
        device: DeviceSpec,
    ) -> Self {
        Self {
            data,
            net,
            steps,
            batch,
            lr: 1e-3,
            lr_halve_every: (steps / 4).max(1),
            lr_schedule: LrSchedule::Cosine,
            lr_warmup: steps / 50,
            sigma_sampling: SigmaSampling::Mixture,
            ema: None,
            sigma_min: 0.0,
            sigma_max: 1.0,
            loss_weighting: LossWeighting::InvSigma,
            seed,
            on_nan: OnNan::Stop,
            checkpoint_every: 250,
            log_every: (steps / 20).max(1),
            val_sigmas: vec![15.0 / 255.0, 50.0 / 255.0, 100.0 / 255.0],
            val_count: 64,
            min_epoch: 1000,
            device,
        }
    }

    /// Checks the numbers before any work starts.
    pub fn validate(&self) -> Result<(), InvalidField> {
        check(self.steps > 0, "steps", self.steps, "must be ≥ 1")?;
        check(
            (1..=4096).contains(&self.batch),
            "batch",
            self.batch,
            "must be in 1..=4096",
        )?;
        check(
            self.lr > 0.0 && self.lr < 1.0,
            "lr",
            self.lr,
            "must be in (0, 1)",
        )?;
        check(
            self.sigma_max > 0.0 && self.sigma_max.is_finite(),
            "sigma_max",
            self.sigma_max,
            "must be positive",
        )?;
        check(
            (0.0..=self.sigma_max).contains(&self.sigma_min),
            "sigma_min",
            self.sigma_min,
            format!("must be in [0, sigma_max = {}]", self.sigma_max),
        )?;
        for (field, value) in [
            ("lr_halve_every", self.lr_halve_every),
            ("checkpoint_every", self.checkpoint_every),
            ("log_every", self.log_every),
        ] {
            check(value > 0, field, value, "must be ≥ 1")?;
        }
        if let Some(beta) = self.ema {
            check(
                (0.0..1.0).contains(&beta),
                "ema",
                beta,
                "must be in [0, 1) (0.999: the average of about the last 1000 steps)",
            )?;
        }
        check(
            self.val_sigmas.iter().all(|s| s.is_finite() && *s > 0.0),
            "val_sigmas",
            format!("{:?}", self.val_sigmas),
            "must be positive noise levels",
        )?;
        self.net.validate()
    }

    /// The learning rate at `step` (0-based) of a run of `self.steps` steps.
    pub fn lr_at(&self, step: u64) -> f64 {
        match self.lr_schedule {
            LrSchedule::Step => self.lr * 0.5f64.powi((step / self.lr_halve_every) as i32),
            LrSchedule::Cosine if step < self.lr_warmup => {
                self.lr * (step + 1) as f64 / self.lr_warmup as f64
            }
            LrSchedule::Cosine => {
                let span = self.steps.saturating_sub(self.lr_warmup).max(1) as f64;
                let t = (step - self.lr_warmup) as f64 / span;
                self.lr * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
            }
        }
    }

    /// The learning-rate plan in words, for reports.
    pub fn describe_schedule(&self) -> String {
        match self.lr_schedule {
            LrSchedule::Step => format!("halved every {} steps", self.lr_halve_every),
            LrSchedule::Cosine => format!("cosine, {} warm-up steps", self.lr_warmup),
        }
    }

    /// The configuration of this run extended (or shortened) to `steps`, its learning-rate plan
    /// re-planned over the new total: the cosine is a function of the total already; the
    /// halving period scales with it (halving every 1/4 of the run stays every 1/4).
    pub fn extend(&self, steps: u64) -> TrainConfig {
        let mut cfg = self.clone();
        if steps != self.steps {
            cfg.lr_halve_every = ((self.lr_halve_every as u128 * steps as u128
                / self.steps.max(1) as u128) as u64)
                .max(1);
            cfg.steps = steps;
        }
        cfg
    }
}

/// Errors of training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Bad data.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Saving or loading weights.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Device unavailable.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// Validation failed.
    #[error(transparent)]
    Denoise(#[from] DenoiseError),
    /// A setting out of range.
    #[error("invalid training setting")]
    Invalid(#[from] InvalidField),
    /// The data given were resolved from other settings than the configuration's.
    #[error("the training data were resolved from other data settings than the run's")]
    DataMismatch,
    /// The folder already holds a run and resuming was not asked for.
    #[error("{0} already holds a run; resume it or choose another folder")]
    Exists(PathBuf),
    /// The network's channels differ from the images'.
    #[error("the network is configured for {net} channel(s) but the images have {images}")]
    Channels {
        /// The network's image channels.
        net: usize,
        /// The images'.
        images: usize,
    },
    /// The batch would not fit in memory.
    #[error(transparent)]
    Memory(#[from] crate::resources::Shortfall),
    /// The GPU refused the batch for lack of memory.
    #[error(transparent)]
    DeviceMemory(Box<crate::resources::DeviceShortfall>),
    /// A checkpoint made with another seed or network.
    #[error("{0} was made with another seed or network; resume with the run's own config.json")]
    ForeignCheckpoint(PathBuf),
    /// The training images differ from those the run was trained on.
    #[error(
        "the training images differ from those {run} was trained on (fingerprint {now} vs {then})"
    )]
    DataChanged {
        /// The run folder.
        run: PathBuf,
        /// The fingerprint of the images now.
        now: String,
        /// The one in the run's record.
        then: String,
    },
    /// The run has no final weights yet.
    #[error("{0} has no model.safetensors yet: finish training (resume it)")]
    Unfinished(PathBuf),
    /// File system error.
    #[error("{path}: {source}{}", crate::io::advice(source))]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// SIGINT or SIGTERM: a checkpoint was written at `step`.
    #[error("interrupted at step {step}; checkpoint written in {run}: resume the run to continue")]
    Interrupted {
        /// The run folder.
        run: PathBuf,
        /// The step checkpointed.
        step: u64,
    },
    /// Another process is writing the run folder.
    #[error(transparent)]
    Locked(#[from] crate::lock::LockError),
    /// The loss became NaN or infinite.
    #[error("loss became {loss} at step {step}; the last checkpoint is intact: lower the learning rate and resume")]
    Diverged {
        /// The step.
        step: u64,
        /// The loss value.
        loss: f32,
    },
}

/// What a training session reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainReport {
    /// Steps done in total.
    pub steps: u64,
    /// Step training started from (0, or the checkpoint's).
    pub resumed_from: u64,
    /// Mean loss over the last logging window.
    pub final_loss: f64,
    /// Validation at the end.
    pub validation: Vec<DenoisingRow>,
    /// Training throughput (images per second, this session).
    pub images_per_second: f64,
}

/// The images of each step, epoch by epoch: a training set of N images is repeated to fill an
/// epoch (at least `min_epoch` images) and each epoch is shuffled by its own stream.
struct EpochOrder {
    n: usize,
    len: usize,
    seed: u64,
    cached: Option<(u64, Vec<usize>)>,
}

impl EpochOrder {
    fn new(n: usize, min_epoch: usize, seed: u64) -> Self {
        Self {
            n,
            len: split::epoch_len(n, min_epoch),
            seed,
            cached: None,
        }
    }

    /// Training-set index of the `p`-th image drawn since the start of training.
    fn image(&mut self, p: u64) -> usize {
        let epoch = p / self.len as u64;
        if self.cached.as_ref().map(|c| c.0) != Some(epoch) {
            let mut order: Vec<usize> = (0..self.len).map(|i| i % self.n).collect();
            order.shuffle(&mut stream(self.seed, Purpose::Epoch, epoch));
            self.cached = Some((epoch, order));
        }
        self.cached.as_ref().expect("filled above").1[(p % self.len as u64) as usize]
    }
}

/// The clean batch and its noise for step `step`.
fn batch_at(
    cfg: &TrainConfig,
    train: &Images,
    order: &mut EpochOrder,
    step: u64,
) -> (Images, Images, Vec<f32>) {
    let b = cfg.batch as u64;
    let idx: Vec<usize> = (0..b).map(|i| order.image(step * b + i)).collect();
    let x = train.select(&idx);
    let mut noise = Images::zeros(x.shape());
    let d = x.dim();
    let mut rng = stream(cfg.seed, Purpose::TrainNoise, step);
    let mut weights = Vec::with_capacity(cfg.batch);
    for img in noise.as_mut_slice().chunks_exact_mut(d) {
        let sigma = cfg
            .sigma_sampling
            .draw(&mut rng, cfg.sigma_min, cfg.sigma_max);
        weights.push(cfg.loss_weighting.weight(sigma, cfg.sigma_max));
        for v in img {
            let z: f32 = StandardNormal.sample(&mut rng);
            *v = sigma * z;
        }
    }
    (x, noise, weights)
}

fn io(path: PathBuf) -> impl FnOnce(std::io::Error) -> TrainError {
    move |source| TrainError::Io { path, source }
}

/// Tries a training step's forward and backward passes at `batch` on a GPU (`device`, with
/// autodiff) before training starts, and refuses a batch the device cannot hold, naming the
/// largest one it can (found by trying smaller ones, [`crate::resources::largest_fitting`]).
/// Nothing the run keeps is touched: the trials run on a network of their own (a forward pass
/// in training mode moves the norms' running statistics, which a clone would share), on a fixed
/// pattern rather than training data, and their gradients are dropped. On success this costs
/// one step (and compiles the step's kernels, which the first real step would have done).
pub fn check_device_batch(
    net: &NetConfig,
    device: &Device,
    batch: usize,
    [c, h, w]: [usize; 3],
    device_name: &str,
) -> Result<(), crate::resources::DeviceShortfall> {
    let net = net.init(device, 0);
    let mut reason = None;
    let trial = |b: usize| -> Result<bool, std::convert::Infallible> {
        let run = crate::device::within_memory(|| {
            let pattern = (0..b * c * h * w)
                .map(|i| (i % 251) as f32 / 251.0)
                .collect();
            let y = Images::new(pattern, [b, c, h, w]).to_tensor(device);
            let loss = (net.forward(y.clone(), Mode::Train) - y).square().sum();
            drop(loss.backward());
            loss.try_into_data()
        });
        if let Err(line) = run {
            reason.get_or_insert(line);
            device.memory_cleanup();
            return Ok(false);
        }
        Ok(true)
    };
    let Ok(fits) = crate::resources::largest_fitting(batch, trial);
    match (fits, reason) {
        (Some(f), _) if f >= batch => Ok(()),
        (fits, reason) => Err(crate::resources::DeviceShortfall {
            device: device_name.to_string(),
            batch,
            h,
            w,
            fits,
            reason: reason.unwrap_or_default(),
            purpose: " to train",
        }),
    }
}

/// Refuses a batch whose training would not fit in `available` bytes (`None`: unknown).
fn check_memory(
    cfg: &TrainConfig,
    h: usize,
    w: usize,
    available: Option<u64>,
) -> Result<(), TrainError> {
    let per_image = crate::resources::training_bytes(&cfg.net, 1, h, w);
    crate::resources::check_batch(per_image, cfg.batch, [h, w], available, " to train")?;
    Ok(())
}

/// How one call to [`train`] treats the run folder and how far it goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Session {
    /// Continue from `checkpoint.safetensors`; without it a folder that already holds a run is
    /// refused.
    pub resume: bool,
    /// Stop after this step (checkpointed, resumable) instead of at the end of the plan: a
    /// run split over several jobs follows the same plan, and ends bit for bit where an
    /// uninterrupted one would.
    pub stop_at: Option<u64>,
}

impl Session {
    /// A whole run from the start (`resume = false`) or from its checkpoint.
    pub fn resuming(resume: bool) -> Self {
        Self {
            resume,
            stop_at: None,
        }
    }
}

/// Trains (or resumes, when the session says so) and writes the run folder.
pub fn train(
    cfg: &TrainConfig,
    run: &RunDir,
    session: Session,
    progress: &dyn Progress,
) -> Result<TrainReport, TrainError> {
    cfg.validate()?;
    train_on(cfg, cfg.data.resolve()?, run, session, progress)
}

/// [`train`] on training data already resolved from `cfg.data` (loading a large image folder
/// twice, once to size the network and once to train, took as long as loading it).
pub fn train_on(
    cfg: &TrainConfig,
    data: TrainingData,
    run: &RunDir,
    session: Session,
    progress: &dyn Progress,
) -> Result<TrainReport, TrainError> {
    cfg.validate()?;
    let resume = session.resume;
    let end = session.stop_at.map_or(cfg.steps, |s| s.min(cfg.steps));
    if data.config != cfg.data {
        return Err(TrainError::DataMismatch);
    }
    let _lock = crate::lock::FolderLock::acquire(run.root())?;
    let has_run = run.config().exists();
    if has_run && !resume {
        return Err(TrainError::Exists(run.root().to_path_buf()));
    }
    let [c, h, w] = data.train.image_shape();
    if c != cfg.net.image_channels {
        return Err(TrainError::Channels {
            net: cfg.net.image_channels,
            images: c,
        });
    }
    let device = cfg.device.device()?;
    // host memory is the limit on the CPU, checked by estimate; a GPU states none, so there
    // the batch is tried (below, after the checkpoint checks)
    let host = crate::device::is_host(&device);
    if host {
        check_memory(cfg, h, w, crate::resources::available_memory())?;
    }
    let adev = device.clone().autodiff();
    let fresh_optim = || AdamConfig::new().init();

    let checkpoint_path = run.checkpoint();
    // the checkpoint, or the initial state: what a resume starts from and a rollback returns to
    let restore = || -> Result<_, TrainError> {
        let (net, optim, state, saved_ema): (_, ModuleOptimizer, _, _) = if checkpoint_path.exists()
        {
            let ck = checkpoint::load_checkpoint(&checkpoint_path, &adev, fresh_optim())?;
            if ck.state.seed != cfg.seed || ck.config != cfg.net {
                return Err(TrainError::ForeignCheckpoint(checkpoint_path.clone()));
            }
            (ck.net, ck.optim, ck.state, ck.ema.map(|e| e.valid()))
        } else {
            let state = TrainState {
                step: 0,
                seed: cfg.seed,
                lr_scale: 1.0,
            };
            (cfg.net.init(&adev, cfg.seed), fresh_optim(), state, None)
        };
        // the moving average starts from the weights it is first taken of
        let ema = cfg.ema.map(|_| saved_ema.unwrap_or_else(|| net.valid()));
        Ok((net, optim, state, ema))
    };
    if !resume && checkpoint_path.exists() {
        // a folder without config.json but with a checkpoint: not ours to continue
        return Err(TrainError::Exists(run.root().to_path_buf()));
    }
    let (mut net, mut optim, state, mut ema) = restore()?;
    let (start, mut lr_scale) = (state.step, state.lr_scale);
    if !host && start < end {
        check_device_batch(
            &cfg.net,
            &adev,
            cfg.batch,
            [c, h, w],
            &cfg.device.describe(),
        )
        .map_err(|e| TrainError::DeviceMemory(Box::new(e)))?;
    }

    let record = RunRecord {
        config: cfg.clone(),
        tweedie_version: env!("CARGO_PKG_VERSION").into(),
        data_fingerprint: data.dataset.fingerprint.clone(),
        train_fingerprint: data.train.fingerprint(),
        train_images: data.train.len(),
        image_shape: [c, h, w],
        num_params: net.param_count(),
    };
    if has_run {
        let old: RunRecord = run.read_config().map_err(io(run.config()))?;
        if old.train_fingerprint != record.train_fingerprint {
            return Err(TrainError::DataChanged {
                run: run.root().to_path_buf(),
                now: record.train_fingerprint,
                then: old.train_fingerprint,
            });
        }
    }
    run.write_config(&record).map_err(io(run.config()))?;
    if resume {
        crate::run::truncate_metrics(run, start).map_err(io(run.metrics()))?;
    }

    let val = data.dataset.test.take(cfg.val_count);
    let mut order = EpochOrder::new(data.train.len(), cfg.min_epoch, cfg.seed);
    progress.log(&format!(
        "{:?}: {} parameters; {} steps of {} images on {}",
        cfg.net.arch,
        record.num_params,
        cfg.steps,
        cfg.batch,
        cfg.device.describe()
    ));
    progress.start("training", cfg.steps);
    progress.update(start, "");
    let started = Instant::now();
    let mut window_start = Instant::now();
    let (mut loss_sum, mut loss_n) = (0.0f64, 0u64);
    let mut last_loss = f64::NAN;
    let mut validation = Vec::new();

    let watch = crate::interrupt::Watch::start();
    let mut rollbacks = 0;
    let mut step = start;
    while step < end {
        let (x, noise, weights) = batch_at(cfg, &data.train, &mut order, step);
        let x = x.to_tensor(&adev);
        let noise = noise.to_tensor(&adev);
        let y = x + noise.clone();
        let residual = net.forward(y, Mode::Train);
        let error = (residual - noise).square();
        let error = match cfg.loss_weighting {
            LossWeighting::Uniform => error,
            _ => {
                let w = Tensor::<1>::from_floats(weights.as_slice(), &adev);
                error * w.reshape([cfg.batch, 1, 1, 1])
            }
        };
        let loss: Tensor<1> = error.sum().div_scalar(cfg.batch as f64);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        let lr = cfg.lr_at(step) * lr_scale;
        net = optim.step(lr, net, grads);
        if let (Some(beta), Some(average)) = (cfg.ema, ema.take()) {
            ema = Some(crate::nn::ema::update(
                average,
                &net.valid(),
                crate::nn::ema::decay_at(beta, step),
            ));
        }
        let l: f32 = loss.into_scalar();
        #[cfg(test)]
        let l = tests::inject_nan(step, l);
        if !l.is_finite() {
            if cfg.on_nan == OnNan::Stop || rollbacks == MAX_ROLLBACKS {
                return Err(TrainError::Diverged { step, loss: l });
            }
            rollbacks += 1;
            let (n, o, state, e) = restore()?;
            (net, optim, ema) = (n, o, e);
            lr_scale = state.lr_scale * 0.5;
            let event = format!(
                "loss {l} at step {step}: rolled back to step {}, learning rate ×{lr_scale}",
                state.step
            );
            let line = MetricsLine {
                step: state.step,
                loss: if loss_n > 0 {
                    loss_sum / loss_n as f64
                } else {
                    0.0
                },
                lr: cfg.lr_at(state.step) * lr_scale,
                validation: Vec::new(),
                images_per_second: 0.0,
                event: Some(event.clone()),
            };
            crate::io::append_json_line(&run.metrics(), &line).map_err(io(run.metrics()))?;
            progress.log(&event);
            (loss_sum, loss_n) = (0.0, 0);
            step = state.step;
            continue;
        }
        loss_sum += l as f64;
        loss_n += 1;
        let done = step + 1;
        progress.update(done, &format!("loss {l:.3}"));

        if done % cfg.log_every == 0 || done == end {
            let secs = window_start.elapsed().as_secs_f64().max(1e-9);
            let ips = (loss_n as f64 * cfg.batch as f64) / secs;
            let weights = ema.clone().unwrap_or_else(|| net.valid());
            let learned = Learned::new(weights, device.clone(), c);
            validation = denoising_table(
                &learned,
                &val,
                &cfg.val_sigmas,
                derive(cfg.seed, Purpose::Validation, &[]),
            )?;
            last_loss = loss_sum / loss_n as f64;
            let line = MetricsLine {
                step: done,
                loss: last_loss,
                lr,
                validation: validation.clone(),
                images_per_second: ips,
                event: None,
            };
            crate::io::append_json_line(&run.metrics(), &line).map_err(io(run.metrics()))?;
            progress.log(&format!(
                "step {done}: loss {last_loss:.4}, {}",
                validation
                    .iter()
                    .map(|r| format!(
                        "σ={:.3} PSNR {:.2} dB (noisy {:.2})",
                        r.sigma, r.psnr, r.input_psnr
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            (loss_sum, loss_n) = (0.0, 0);
            window_start = Instant::now();
        }
        // a stop asked for by SIGINT/SIGTERM checkpoints here, like a scheduled one
        let interrupted = crate::interrupt::requested() && done < end;
        if done % cfg.checkpoint_every == 0 || done == end || interrupted {
            checkpoint::save_checkpoint(
                &net,
                ema.as_ref(),
                &cfg.net,
                &optim,
                TrainState {
                    step: done,
                    seed: cfg.seed,
                    lr_scale,
                },
                &checkpoint_path,
            )?;
        }
        if interrupted {
            progress.finish();
            return Err(TrainError::Interrupted {
                run: run.root().to_path_buf(),
                step: done,
            });
        }
        step = done;
    }
    drop(watch);
    progress.finish();
    if end == cfg.steps {
        checkpoint::save_weights(&net.valid(), &cfg.net, &run.model())?;
        if let Some(average) = &ema {
            checkpoint::save_weights(average, &cfg.net, &run.model_ema())?;
        }
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    Ok(TrainReport {
        steps: end.max(start),
        resumed_from: start,
        final_loss: last_loss,
        validation,
        images_per_second: end.saturating_sub(start) as f64 * cfg.batch as f64 / secs,
    })
}

/// Trains the run of `cfg` in `run` unless it is finished there: resumes a partial run, starts
/// over a folder that holds something else (another configuration, a deleted config). The
/// state found is returned. What studies build on: every one of their runs resumes alike.
pub fn ensure_trained(
    cfg: &TrainConfig,
    run: &RunDir,
    progress: &dyn Progress,
) -> Result<RunState, TrainError> {
    let state = run.state(cfg);
    match state {
        RunState::Finished => {
            // a run found under another data path (its study folder moved): the record now
            // names where the data are, so the run's own commands (eval, sample) find them
            let rec: RunRecord = run.read_config().map_err(io(run.config()))?;
            if rec.config.data.source != cfg.data.source {
                let config = TrainConfig {
                    data: cfg.data.clone(),
                    ..rec.config.clone()
                };
                let moved = RunRecord { config, ..rec };
                run.write_config(&moved).map_err(io(run.config()))?;
            }
            return Ok(state);
        }
        RunState::Missing if run.root().exists() => {
            std::fs::remove_dir_all(run.root()).map_err(io(run.root().to_path_buf()))?;
        }
        _ => {}
    }
    train(cfg, run, Session::resuming(true), progress)?;
    Ok(state)
}

/// Which weights of a run to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Weights {
    /// The moving average when the run keeps one (`model-ema.safetensors`), else the last
    /// weights.
    #[default]
    Ema,
    /// The last weights of training (`model.safetensors`).
    Raw,
}

/// Loads the trained network of a run folder as a blind denoiser on `device` (its moving
/// average of the weights when it keeps one; see [`load_weights`] to choose).
pub fn load_denoiser(run: &RunDir, device: &Device) -> Result<(Learned, RunRecord), TrainError> {
    load_weights(run, device, Weights::Ema)
}

/// Loads the chosen weights of a run folder as a blind denoiser on `device`.
pub fn load_weights(
    run: &RunDir,
    device: &Device,
    weights: Weights,
) -> Result<(Learned, RunRecord), TrainError> {
    let record: RunRecord = run.read_config().map_err(|source| TrainError::Io {
        path: run.config(),
        source,
    })?;
    if !run.model().exists() {
        return Err(TrainError::Unfinished(run.root().to_path_buf()));
    }
    let model = match weights {
        Weights::Ema if run.model_ema().exists() => run.model_ema(),
        _ => run.model(),
    };
    let (net, cfg) = checkpoint::load_weights(&model, device)?;
    Ok((
        Learned::new(net, device.clone(), cfg.image_channels),
        record,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(schedule: LrSchedule, steps: u64) -> TrainConfig {
        let mut cfg: TrainConfig = serde_json::from_value(old_config_json()).unwrap();
        cfg.lr_schedule = schedule;
        cfg.steps = steps;
        cfg.lr_halve_every = steps / 4;
        cfg.lr_warmup = 10;
        cfg
    }

    #[test]
    fn cosine_plan_warms_up_decays_and_is_replanned_by_an_extension() {
        let cfg = plan(LrSchedule::Cosine, 100);
        assert!((cfg.lr_at(0) - cfg.lr / 10.0).abs() < 1e-12);
        assert!((cfg.lr_at(9) - cfg.lr).abs() < 1e-12);
        assert!(cfg.lr_at(55) < cfg.lr_at(20) && cfg.lr_at(99) < 0.01 * cfg.lr);
        let longer = cfg.extend(200);
        assert_eq!(longer.steps, 200);
        // step 100 of a 200-step plan: lr at (90/190) of the cosine, far from 0
        assert!(longer.lr_at(100) > 0.4 * cfg.lr);
        // the halving period scales with the run
        let step = plan(LrSchedule::Step, 100).extend(200);
        assert_eq!(step.lr_halve_every, 50);
        assert_eq!(
            plan(LrSchedule::Step, 100).extend(100),
            plan(LrSchedule::Step, 100)
        );
    }

    #[test]
    fn sigma_draws_stay_in_range() {
        let mut rng = stream(0, Purpose::TrainNoise, 0);
        for sampling in [
            SigmaSampling::Uniform,
            SigmaSampling::LogUniform,
            SigmaSampling::Mixture,
        ] {
            let draws: Vec<f32> = (0..2000)
                .map(|_| sampling.draw(&mut rng, 0.0, 0.5))
                .collect();
            assert!(
                draws.iter().all(|s| (0.0..=0.5).contains(s)),
                "{sampling:?}"
            );
            let low = draws.iter().filter(|s| **s < 0.05).count();
            match sampling {
                // a tenth of the range below 0.05 uniformly; log-uniform puts 58% there
                SigmaSampling::Uniform => assert!(low < 300, "{low}"),
                SigmaSampling::LogUniform => assert!(low > 1000, "{low}"),
                SigmaSampling::Mixture => assert!((400..900).contains(&low), "{low}"),
            }
        }
    }

    /// The density integrates to 1 and predicts the share of draws in any interval.
    #[test]
    fn sigma_density_matches_the_draws() {
        let mut rng = stream(1, Purpose::TrainNoise, 0);
        let (min, max) = (0.0f64, 0.5f64);
        for sampling in [
            SigmaSampling::Uniform,
            SigmaSampling::LogUniform,
            SigmaSampling::Mixture,
        ] {
            let n = 20000;
            let draws: Vec<f64> = (0..n)
                .map(|_| sampling.draw(&mut rng, min as f32, max as f32) as f64)
                .collect();
            // midpoint rule on a log grid (the log-uniform part lives on [max/256, max])
            let integral = |lo: f64, hi: f64| {
                let k = 4000;
                let (a, b) = (lo.ln(), hi.ln());
                (0..k)
                    .map(|i| {
                        let s = (a + (i as f64 + 0.5) * (b - a) / k as f64).exp();
                        sampling.density(s, min, max) * s * (b - a) / k as f64
                    })
                    .sum::<f64>()
            };
            let total = integral(1e-9, max);
            assert!((total - 1.0).abs() < 1e-3, "{sampling:?}: ∫ = {total}");
            for (lo, hi) in [(0.001, 0.01), (0.01, 0.1), (0.1, 0.5)] {
                let share = draws.iter().filter(|&&s| s > lo && s <= hi).count() as f64 / n as f64;
                let expected = integral(lo, hi);
                assert!(
                    (share - expected).abs() < 0.015,
                    "{sampling:?} ({lo}, {hi}]: drawn {share:.3}, density {expected:.3}"
                );
            }
        }
    }

    #[test]
    fn loss_weights_are_one_at_sigma_max_and_fall_with_sigma_as_documented() {
        let (max, floor) = (0.5f32, 0.005f32);
        for s in [0.0f32, 0.01, 0.1, 0.5] {
            assert_eq!(LossWeighting::Uniform.weight(s, max), 1.0);
            let inv = LossWeighting::InvSigma.weight(s, max);
            assert!((inv - max / (s + floor)).abs() < 1e-3 * inv, "{s}: {inv}");
            let var = LossWeighting::InvVariance.weight(s, max);
            assert!((var - inv * inv).abs() < 1e-3 * var, "{s}: {var}");
        }
        assert!((LossWeighting::InvSigma.weight(max, max) - 1.0 / 1.01).abs() < 1e-6);
        assert!(
            LossWeighting::InvSigma.weight(0.1, max) > LossWeighting::InvSigma.weight(0.2, max)
        );
    }

    /// Data resolved from other settings than the run's are refused before anything trains.
    #[test]
    fn train_on_refuses_data_resolved_from_other_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = tiny_disks(dir.path());
        let mut json = old_config_json();
        json["data"]["source"] = path.display().to_string().into();
        json["device"] = "cpu".into();
        let cfg: TrainConfig = serde_json::from_value(json).unwrap();
        let mut other = cfg.data.clone();
        other.split.train_size = Some(4);
        let data = other.resolve().unwrap();
        let run = RunDir::new(dir.path().join("run"));
        let err = train_on(
            &cfg,
            data,
            &run,
            Session::default(),
            &crate::progress::Silent,
        )
        .err();
        assert!(matches!(&err, Some(TrainError::DataMismatch)), "{err:?}");
        assert!(!run.config().exists(), "nothing is written");
    }

    thread_local! {
        static NAN_AT: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
    }

    /// The loss of `step`, or NaN once at the step a test chose (training runs on its caller's
    /// thread, so the choice is the calling test's alone).
    pub(super) fn inject_nan(step: u64, loss: f32) -> f32 {
        NAN_AT.with(|at| {
            if at.get() == Some(step) {
                at.set(None);
                f32::NAN
            } else {
                loss
            }
        })
    }

    /// A NaN loss stops a run with its last checkpoint intact, or, with `OnNan::Rollback`,
    /// returns to that checkpoint at half the learning rate and finishes; the rollback is in
    /// `metrics.jsonl` and the halved rate in the checkpoint.
    #[test]
    fn a_nan_loss_stops_or_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = tiny_disks(dir.path());
        let mut json = old_config_json();
        json["data"]["source"] = path.display().to_string().into();
        json["data"]["split"]["train_size"] = serde_json::Value::Null;
        json["steps"] = 12.into();
        let cfg: TrainConfig = serde_json::from_value(json).unwrap();
        let silent = &crate::progress::Silent;

        let stop = RunDir::new(dir.path().join("stop"));
        NAN_AT.with(|at| at.set(Some(7)));
        let err = train(&cfg, &stop, Session::default(), silent).unwrap_err();
        assert!(matches!(err, TrainError::Diverged { step: 7, .. }), "{err}");
        let device = cfg.device.device().unwrap().autodiff();
        let ck = checkpoint::load_checkpoint(&stop.checkpoint(), &device, AdamConfig::new().init())
            .unwrap();
        assert_eq!(ck.state.step, 5, "the last good checkpoint");
        assert!(!stop.model().exists());

        let roll = RunDir::new(dir.path().join("roll"));
        let cfg = TrainConfig {
            on_nan: OnNan::Rollback,
            ..cfg
        };
        NAN_AT.with(|at| at.set(Some(7)));
        let report = train(&cfg, &roll, Session::default(), silent).unwrap();
        assert_eq!(report.steps, 12);
        assert!(report.final_loss.is_finite());
        let lines = crate::run::read_metrics(&roll).unwrap();
        let events: Vec<_> = lines.iter().filter_map(|l| l.event.as_deref()).collect();
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(events[0].contains("rolled back to step 5"), "{}", events[0]);
        let ck = checkpoint::load_checkpoint(&roll.checkpoint(), &device, AdamConfig::new().init())
            .unwrap();
        assert_eq!((ck.state.step, ck.state.lr_scale), (12, 0.5));
        assert!(roll.model().exists());
    }

    /// A batch the machine cannot hold is refused with the batch that fits, which does fit.
    #[test]
    fn a_batch_larger_than_memory_is_refused_with_one_that_fits() {
        let mut json = old_config_json();
        json["batch"] = 256.into();
        let cfg: TrainConfig = serde_json::from_value(json).unwrap();
        let one = crate::resources::training_bytes(&cfg.net, 1, 64, 64);
        let available = 100 * one;
        let err = check_memory(&cfg, 64, 64, Some(available)).unwrap_err();
        let TrainError::Memory(crate::resources::Shortfall { fits, .. }) = err else {
            panic!("{err}")
        };
        assert_eq!(fits, 100);
        assert!(err.to_string().contains("--batch 100 or less"));
        let cfg = TrainConfig { batch: fits, ..cfg };
        assert!(check_memory(&cfg, 64, 64, Some(available)).is_ok());
        assert!(
            check_memory(&cfg, 64, 64, None).is_ok(),
            "unknown: not checked"
        );
    }

    /// A full disk at a checkpoint stops training with a message that says what to do; the
    /// previous checkpoint stays byte for byte, no temp file is left, and once there is room
    /// again the run resumes and finishes like one that never ran out.
    #[test]
    fn a_full_disk_keeps_the_last_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = tiny_disks(dir.path());
        let mut json = old_config_json();
        json["data"]["source"] = path.display().to_string().into();
        json["data"]["split"]["train_size"] = serde_json::Value::Null;
        let cfg: TrainConfig = serde_json::from_value(json).unwrap();
        let silent = &crate::progress::Silent;

        let whole = RunDir::new(dir.path().join("whole"));
        train(&cfg, &whole, Session::default(), silent).unwrap();

        let run = RunDir::new(dir.path().join("run"));
        let half = Session {
            resume: false,
            stop_at: Some(5),
        };
        train(&cfg, &run, half, silent).unwrap();
        let before = std::fs::read(run.checkpoint()).unwrap();
        // config.json and the log line at step 10 fit; the checkpoint at step 10 does not
        crate::io::full_disk::fill_after(Some(2));
        let err = train(&cfg, &run, Session::resuming(true), silent);
        crate::io::full_disk::fill_after(None);
        let msg = err.unwrap_err().to_string();
        assert!(
            msg.contains("checkpoint.safetensors")
                && msg.contains("No space left")
                && msg.contains("--resume"),
            "{msg}"
        );
        assert_eq!(std::fs::read(run.checkpoint()).unwrap(), before);
        let stray: Vec<_> = std::fs::read_dir(run.root())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(stray.is_empty(), "{stray:?}");
        assert!(!run.model().exists());

        train(&cfg, &run, Session::resuming(true), silent).unwrap();
        assert_eq!(
            std::fs::read(run.model()).unwrap(),
            std::fs::read(whole.model()).unwrap()
        );
    }

    /// 40 disks of 8×8 in `dir/disks.npy`.
    fn tiny_disks(dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("disks.npy");
        let imgs = crate::data::synthetic::Family::Disks(Default::default())
            .generate(8, 40, 1)
            .unwrap();
        crate::data::write_npy(&imgs, &path).unwrap();
        path
    }

    fn old_config_json() -> serde_json::Value {
        serde_json::json!({
            "data": {"source": "fashion-mnist", "gray": false, "size": null, "test_size": null,
                     "split": {"train_size": 10, "split": "a", "split_seed": 0, "dedup": null}},
            "net": {"arch": "bf-unet", "image_channels": 1, "channels": 8, "blocks": 2,
                    "layers": 20},
            "steps": 10, "batch": 4, "lr": 0.001, "lr_halve_every": 5, "sigma_min": 0.0,
            "sigma_max": 1.0, "seed": 0, "checkpoint_every": 5, "log_every": 5,
            "val_sigmas": [0.1], "val_count": 4, "min_epoch": 10, "device": "cpu"
        })
    }

    /// A `config.json` written before the field existed resumes with the objective it was
    /// trained with.
    #[test]
    fn configs_without_a_loss_weighting_read_as_uniform() {
        let mut json = old_config_json();
        let old: TrainConfig = serde_json::from_value(json.clone()).expect("old config");
        assert_eq!(old.loss_weighting, LossWeighting::Uniform);
        // and with the learning-rate plan, σ draws and (no) averaging it was trained with
        assert_eq!(old.lr_schedule, LrSchedule::Step);
        assert_eq!(old.sigma_sampling, SigmaSampling::Uniform);
        assert_eq!((old.lr_warmup, old.ema), (0, None));
        json["loss_weighting"] = "inv-sigma".into();
        let new: TrainConfig = serde_json::from_value(json).expect("new config");
        assert_eq!(new.loss_weighting, LossWeighting::InvSigma);
    }
}
