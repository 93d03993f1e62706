//! What a training run is asked to do: its data, network, recipe (σ draws, loss weights,
//! learning-rate plan) and bookkeeping, resolved and validated before any work starts.

use super::stopping::StopRule;
use crate::config::{check, InvalidField};
use crate::data::{split, DataError, DataSource, Dataset, FolderOptions, Images, SplitSpec};
use crate::device::DeviceSpec;
use crate::nn::NetConfig;
use crate::rng::{stream, Purpose};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

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
    /// Linear warm-up over `lr_warmup` steps, then constant: with a stopping rule
    /// ([`super::stopping`]), halved only at each plateau of the validation losses.
    Plateau,
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

impl TrainConfig {
    /// The prior over σ that a blind denoiser trained with this configuration is fitted to: the density of its
    /// σ draws times its loss weight, as masses on `points` noise levels log-spaced from σ_max/10⁴
    /// to σ_max (what lies below carries under 10⁻⁴ of the mass). Minimizing E[w(σ)‖f(y) − x‖²]
    /// gives f(y) = E[w(σ) x | y] / E[w(σ) | y]: the posterior mean under this prior, which
    /// [`crate::denoise::Wiener::blind_optimum`] computes for Gaussian fields.
    pub fn fitted_sigma_prior(&self, points: usize) -> Vec<(f64, f64)> {
        let cfg = self;
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
    /// Train to convergence: stop when the validation losses stop improving (`steps` is then
    /// the cap). `None`: train exactly `steps` steps (and runs written before this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopRule>,
    /// Steps at which a copy of the weights is kept in `snapshots/` (training time as an axis:
    /// a study measures its networks at each). Runs written before this field: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<u64>,
}

/// `count` log-spaced snapshot steps: 125, 250, 500, … (doubling), the spacing at which
/// memorization and generalization develop (Bonnaire et al. 2025 plot both against log time).
pub fn log_spaced_steps(count: usize) -> Vec<u64> {
    (0..count as u32).map(|i| 125u64 << i).collect()
}

/// How long to train.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steps {
    /// Exactly this many steps.
    Fixed(u64),
    /// Until converged ([`crate::train::stopping`]), at most this many steps.
    Auto(u64),
}

/// The cap of `auto` training.
pub const AUTO_CAP: u64 = 20_000;

impl Steps {
    /// The number of steps: the fixed count, or the cap.
    pub fn cap(self) -> u64 {
        match self {
            Steps::Fixed(n) | Steps::Auto(n) => n,
        }
    }

    /// `N`, `auto` (cap [`AUTO_CAP`]) or `auto:CAP`, as the command line and the Python package
    /// spell it.
    pub fn parse(s: &str) -> Result<Self, String> {
        let positive = |t: &str| {
            match t.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "{s:?} is not a step count: give a number ≥ 1, `auto` or `auto:CAP` (e.g. auto:8000)"
            )),
        }
        };
        match s.trim() {
            "auto" => Ok(Steps::Auto(AUTO_CAP)),
            t => match t.strip_prefix("auto:") {
                Some(cap) => positive(cap).map(Steps::Auto),
                None => positive(t).map(Steps::Fixed),
            },
        }
    }
}

impl TrainConfig {
    /// A configuration with the default recipe (docs/training.md): Adam at 10⁻³ on a
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
            stop: None,
            snapshots: Vec::new(),
        }
    }

    /// This configuration trained to convergence ([`super::stopping`]) with at most `cap` steps:
    /// the cosine plan over the cap, halved at each plateau of the validation losses, and
    /// logged (and so watched) every tenth of the rule's patience. Where the cap binds, the run
    /// ends annealed, as a fixed-step run of that length would; where the rule stops it first,
    /// its halvings have done the annealing.
    pub fn until_converged(mut self, rule: StopRule, cap: u64) -> Self {
        self.steps = cap;
        self.stop = Some(rule);
        self.lr_schedule = LrSchedule::Cosine;
        self.lr_warmup = cap / 50;
        self.lr_halve_every = (cap / 4).max(1);
        self.log_every = rule.log_every();
        self
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
        match (self.stop, self.lr_schedule) {
            (Some(rule), _) => rule.validate()?,
            (None, LrSchedule::Plateau) => check(
                false,
                "lr_schedule",
                "plateau",
                "needs a stopping rule (--steps auto); with a fixed --steps use cosine or step",
            )?,
            (None, _) => {}
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
            LrSchedule::Cosine | LrSchedule::Plateau if step < self.lr_warmup => {
                self.lr * (step + 1) as f64 / self.lr_warmup as f64
            }
            LrSchedule::Cosine => {
                let span = self.steps.saturating_sub(self.lr_warmup).max(1) as f64;
                let t = (step - self.lr_warmup) as f64 / span;
                self.lr * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
            }
            LrSchedule::Plateau => self.lr,
        }
    }

    /// The learning-rate plan in words, for reports.
    pub fn describe_schedule(&self) -> String {
        match self.lr_schedule {
            LrSchedule::Step => format!("halved every {} steps", self.lr_halve_every),
            LrSchedule::Cosine => format!("cosine, {} warm-up steps", self.lr_warmup),
            LrSchedule::Plateau => format!(
                "constant after {} warm-up steps, halved on plateaus",
                self.lr_warmup
            ),
        }
    }

    /// This recipe with the plan of a new run of `steps`: the settings that follow the number
    /// of steps (warm-up, halving period, log period; with [`Steps::Auto`] the stopping rule and
    /// its plan, [`Self::until_converged`]) derived afresh, as [`Self::new`] and
    /// [`Self::until_converged`] derive them; everything else kept.
    pub fn replan(&self, steps: Steps) -> TrainConfig {
        let fresh = TrainConfig::new(
            self.data.clone(),
            self.net.clone(),
            steps.cap(),
            self.batch,
            self.seed,
            self.device,
        );
        let plan = match steps {
            Steps::Fixed(_) => fresh,
            Steps::Auto(cap) => fresh.until_converged(StopRule::default(), cap),
        };
        TrainConfig {
            steps: plan.steps,
            lr_halve_every: plan.lr_halve_every,
            lr_schedule: plan.lr_schedule,
            lr_warmup: plan.lr_warmup,
            log_every: plan.log_every,
            stop: plan.stop,
            ..self.clone()
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
