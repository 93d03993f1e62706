//! The memorization → generalization study (Kadkhodaie et al. 2024, §2): for each training-set
//! size N, two networks trained on disjoint sets S₁ (`a`) and S₂ (`b`); samples drawn from both
//! with the same noise seeds; then
//!
//! - the similarity of paired samples (small N: different, each a copy of a training image;
//!   large N: the same new image from both networks);
//! - each sample's nearest training image in its own set and in the other set, and the
//!   memorization ratio d₁/d₂ (nearest / second-nearest distance in its own set);
//! - train vs test denoising PSNR (the generalization gap);
//! - the model variance E‖f_a(y) − f_b(y)‖² on held-out noisy images;
//! - the same for the empirical-optimal denoiser of each training set (the perfect memorizer).
//!
//! Similarity is the correlation (cosine of mean-removed images), as in the paper's code.
//! Every run is an ordinary run folder under `runs/`, so a study resumes run by run.
//!
//! With `pairs` > 1 every N gets that many independent pairs, each with its own disjoint split
//! and its own initialisations; [`verdict`] summarizes every figure over pairs and samples as an
//! estimate with a 95% bootstrap interval and says, from the intervals, where the networks
//! memorize and where they generalize.

pub mod verdict;

use super::dir::{Configured, Context, Experiment, ExperimentDir, FolderError, Run};
use crate::analysis::memorization::{median, model_variance, nearest, paired_similarity, Nearest};
use crate::analysis::metrics::{denoising_table, DenoisingRow};
use crate::config::{check, InvalidField};
use crate::data::{Images, Split};
use crate::denoise::{DenoiseError, Denoiser, EmpiricalOptimal};
use crate::progress::{Progress, Silent};
use crate::rng::{derive, Purpose};

use crate::sampling::{Sampler, SamplingError};
use crate::train::record::RunDir;
pub use crate::train::record::RunState;
use crate::train::{self, TrainConfig, TrainError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The whole configuration of a study (`study_config.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Training-set sizes N.
    pub sizes: Vec<usize>,
    /// Training configuration shared by every run; its split and seed are set per run.
    pub train: TrainConfig,
    /// Paired samples per network.
    pub samples: usize,
    /// The sampler (the same for networks and oracles).
    pub sampler: Sampler,
    /// Noise levels of the PSNR and model-variance measurements.
    pub eval_sigmas: Vec<f32>,
    /// Images used for PSNR and model variance.
    pub eval_count: usize,
    /// Seed of the samples (shared by the a and b networks: that is the pairing), of the
    /// evaluation noise and of the runs' seeds.
    pub seed: u64,
    /// How each run's seed derives from `seed`. Studies written before this field existed read
    /// as [`RunSeeds::Positional`] and keep their runs' seeds.
    #[serde(default = "RunSeeds::positional")]
    pub run_seeds: RunSeeds,
    /// Independent pairs of networks per N (studies written before: one).
    #[serde(default = "one")]
    pub pairs: usize,
}

fn one() -> usize {
    1
}

/// How a study derives each run's initialisation (and training-noise) seed from its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunSeeds {
    /// From the run's identity (N, split) through [`crate::rng::derive`]: adding or removing
    /// sizes leaves every other run's seed unchanged.
    Keyed,
    /// seed + 1 + the run's position in the sweep (studies written before `Keyed`).
    Positional,
}

impl RunSeeds {
    fn positional() -> Self {
        RunSeeds::Positional
    }
}

/// One run of the sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunKey {
    /// Training-set size.
    pub n: usize,
    /// Which disjoint set.
    pub split: Split,
    /// Which replicated pair (0: the first, the only one of studies written before).
    #[serde(default)]
    pub pair: usize,
}

impl RunKey {
    /// Folder name, e.g. `N100-a`, and `N100-a-p2` for pair 2.
    pub fn name(&self) -> String {
        let split = match self.split {
            Split::A => "a",
            Split::B => "b",
        };
        match self.pair {
            0 => format!("N{}-{split}", self.n),
            p => format!("N{}-{split}-p{p}", self.n),
        }
    }

    /// The same run's partner in its pair.
    pub fn partner(&self) -> RunKey {
        RunKey {
            split: match self.split {
                Split::A => Split::B,
                Split::B => Split::A,
            },
            ..*self
        }
    }
}

/// Errors of a study.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// Training failed.
    #[error("run {run}: {source}")]
    Train {
        /// Which run.
        run: String,
        /// Why.
        source: TrainError,
    },
    /// Sampling failed.
    #[error(transparent)]
    Sampling(#[from] SamplingError),
    /// Denoising failed.
    #[error(transparent)]
    Denoise(#[from] DenoiseError),
    /// File system.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A bad configuration.
    #[error("invalid study setting")]
    Invalid(#[from] InvalidField),
    /// Runs that must be trained before the study can be measured.
    #[error("runs not finished: {}; train them first (resume the study in {})", .runs.join(", "), .study.display())]
    Unfinished {
        /// The study folder.
        study: PathBuf,
        /// Names of the unfinished runs.
        runs: Vec<String>,
    },
    /// Runs that failed to train (the others trained).
    #[error("{} run(s) failed: {}", .0.len(), .0.join("; "))]
    Failed(Vec<String>),
    /// The two training sets of one N share images.
    #[error("N = {0}: training sets a and b overlap")]
    Overlap(usize),
    /// The study's folder: its lock, configuration or record.
    #[error(transparent)]
    Folder(#[from] FolderError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StudyError + '_ {
    move |source| StudyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The generalization study as an [`Experiment`]: its folder holds `study_config.json`, `runs/`,
/// `samples/`, `study.json`, `figures/` and `report.html`.
pub struct Generalization;

impl Experiment for Generalization {
    const NAME: &'static str = "generalization study";
    const RECORD_FILE: &'static str = "study.json";
    type Config = Config;
    type Record = Record;
}

impl Configured for Generalization {
    const CONFIG_FILE: &'static str = "study_config.json";
}

impl Run for Generalization {
    type Error = StudyError;
    fn run(cfg: &Config, dir: &StudyDir, ctx: &Context<'_>) -> Result<Record, StudyError> {
        let jobs = ctx
            .jobs
            .unwrap_or_else(|| default_jobs(cfg, pending(dir, cfg).len()));
        run(dir, cfg, jobs, &ctx.device, ctx.progress)
    }
}

/// A study folder.
pub type StudyDir = ExperimentDir<Generalization>;

impl StudyDir {
    /// The run folder of one run.
    pub fn run(&self, key: RunKey) -> RunDir {
        RunDir::new(self.root().join("runs").join(key.name()))
    }
    /// Samples of one network.
    pub fn samples(&self, key: RunKey) -> PathBuf {
        self.root()
            .join("samples")
            .join(format!("{}.npy", key.name()))
    }
    /// Samples of the empirical-optimal denoiser of one training set.
    pub fn oracle_samples(&self, key: RunKey) -> PathBuf {
        self.root()
            .join("samples")
            .join(format!("{}-empirical.npy", key.name()))
    }
    /// Samples of one network's snapshot at `step` (training time as an axis).
    pub fn snapshot_samples(&self, key: RunKey, step: u64) -> PathBuf {
        self.root()
            .join("samples")
            .join(format!("{}-step{step:06}.npy", key.name()))
    }
    /// The nearest own training image of each sample of one network (for the pair figures).
    pub fn nearest_images(&self, key: RunKey) -> PathBuf {
        self.root()
            .join("samples")
            .join(format!("{}-nearest.npy", key.name()))
    }
}

impl Config {
    /// A study of `sizes` whose runs train as `train` says (its training-set size, split and
    /// seed are set per run), with the study's defaults: 3 pairs per N, 64 paired samples by
    /// the ascent sampler's defaults, 8 log-spaced snapshots below the cap, PSNR and model
    /// variance at σ = 15, 50, 100 /255 on 256 held-out images, and the samples' seed `train`'s.
    pub fn new(train: TrainConfig, sizes: Vec<usize>) -> Config {
        let mut train = train;
        train.data.split.train_size = None;
        let mut cfg = Config {
            sizes,
            samples: 64,
            sampler: Sampler::Ascent(Default::default()),
            eval_sigmas: vec![15.0 / 255.0, 50.0 / 255.0, 100.0 / 255.0],
            eval_count: 256,
            seed: train.seed,
            run_seeds: RunSeeds::Keyed,
            pairs: 3,
            train,
        };
        cfg.set_snapshots(8);
        cfg
    }

    /// Keeps `count` log-spaced snapshots of every run (steps 125, 250, 500, …, below its
    /// cap), for the measures against training time; 0: none.
    pub fn set_snapshots(&mut self, count: usize) {
        let cap = self.train.steps;
        self.train.snapshots = train::log_spaced_steps(count)
            .into_iter()
            .filter(|s| *s < cap)
            .collect();
    }

    /// Checks everything, the sampler included, before any run trains.
    pub fn validate(&self) -> Result<(), StudyError> {
        check(
            !self.sizes.is_empty() && !self.sizes.contains(&0),
            "sizes",
            format!("{:?}", self.sizes),
            "must list training-set sizes ≥ 1, e.g. 1,10,100",
        )?;
        check(self.samples > 0, "samples", self.samples, "must be ≥ 1")?;
        check(
            (1..=64).contains(&self.pairs),
            "pairs",
            self.pairs,
            "must be in 1..=64 (3 gives intervals; each pair trains two networks per N)",
        )?;
        check(
            self.eval_count > 0,
            "eval_count",
            self.eval_count,
            "must be ≥ 1",
        )?;
        check(
            !self.eval_sigmas.is_empty() && self.eval_sigmas.iter().all(|s| *s > 0.0),
            "eval_sigmas",
            format!("{:?}", self.eval_sigmas),
            "must list positive noise levels",
        )?;
        self.sampler.validate()?;
        Ok(self.train.validate()?)
    }

    /// Every run, in order: N ascending, then pair, `a` before `b`.
    pub fn runs(&self) -> Vec<RunKey> {
        let mut sizes = self.sizes.clone();
        sizes.sort_unstable();
        sizes.dedup();
        let pairs = self.pairs;
        sizes
            .into_iter()
            .flat_map(|n| {
                (0..pairs).flat_map(move |pair| {
                    [Split::A, Split::B].map(|split| RunKey { n, split, pair })
                })
            })
            .collect()
    }

    /// The training configuration of one run: the template with N, the split and a seed of
    /// its own (see [`RunSeeds`]), so the two networks of a pair are initialised differently
    /// and agree only through what they learn.
    pub fn run_config(&self, key: RunKey) -> TrainConfig {
        let mut cfg = self.train.clone();
        cfg.data.split.train_size = Some(key.n);
        cfg.data.split.split = key.split;
        // pair 0 keeps the study's split and seeds, so adding pairs changes no earlier run;
        // pair p deals its disjoint sets from a permutation of its own
        if key.pair > 0 {
            cfg.data.split.split_seed = derive(
                cfg.data.split.split_seed,
                Purpose::StudyPair,
                &[key.pair as u64],
            );
        }
        cfg.seed = match (self.run_seeds, key.pair) {
            (_, pair) if pair > 0 => derive(
                self.seed,
                Purpose::StudyRun,
                &[key.n as u64, key.split as u64, pair as u64],
            ),
            (RunSeeds::Keyed, _) => derive(
                self.seed,
                Purpose::StudyRun,
                &[key.n as u64, key.split as u64],
            ),
            (RunSeeds::Positional, _) => {
                let index = self.runs().iter().position(|k| *k == key).unwrap_or(0) as u64;
                self.seed.wrapping_add(1 + index)
            }
        };
        cfg
    }
}

/// Inspects a run folder (see [`RunDir::state`]).
pub fn run_state(study: &StudyDir, cfg: &Config, key: RunKey) -> RunState {
    study.run(key).state(&cfg.run_config(key))
}

/// Trains one run unless it is finished: resumes a partial run, starts over a broken one.
pub fn train_run(
    study: &StudyDir,
    cfg: &Config,
    key: RunKey,
    progress: &dyn Progress,
) -> Result<RunState, StudyError> {
    train::ensure_trained(&cfg.run_config(key), &study.run(key), progress).map_err(|source| {
        StudyError::Train {
            run: key.name(),
            source,
        }
    })
}

/// The runs still to train.
pub fn pending(study: &StudyDir, cfg: &Config) -> Vec<RunKey> {
    cfg.runs()
        .into_iter()
        .filter(|k| run_state(study, cfg, *k) != RunState::Finished)
        .collect()
}

/// How many of `pending` runs to train at once when the user does not say: one per core for
/// networks up to 2 scales × 16 channels, whose steps leave half of the cores' GEMM rate unused
/// within one run (`tweedie bench --preset study`: 46–56%), so that two runs on one core each
/// trained a 2-run study of 400 steps 11% faster than one run at a time on both (34 s against
/// 38 s of training, 2-core AMD EPYC, 2026-12-05; the same weights either way). Larger networks
/// keep one run on all cores (not measured in parallel; their steps already reach 75–125% of the
/// GEMM rate in direct-convolution terms).
pub fn default_jobs(cfg: &Config, pending: usize) -> usize {
    let net = &cfg.train.net;
    let small = net.channels <= 16 && net.blocks <= 2;
    if small {
        rayon::current_num_threads().min(pending).max(1)
    } else {
        1
    }
}

/// Trains every pending run, `jobs` at a time; returns the failures (the others are done).
pub fn train_all(
    study: &StudyDir,
    cfg: &Config,
    jobs: usize,
    progress: &(dyn Progress + Sync),
) -> Vec<(RunKey, StudyError)> {
    let todo = pending(study, cfg);
    let queue = std::sync::Mutex::new(todo.into_iter());
    let failures = std::sync::Mutex::new(Vec::new());
    // parallel runs share the cores rather than each taking the whole thread pool: two small
    // networks' steps on one core each beat two steps fighting over both
    let threads = (rayon::current_num_threads() / jobs.max(1)).max(1);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                let pool = (jobs > 1)
                    .then(|| {
                        rayon::ThreadPoolBuilder::new()
                            .num_threads(threads)
                            .build()
                            .ok()
                    })
                    .flatten();
                match &pool {
                    Some(pool) => {
                        pool.install(|| work_queue(study, cfg, jobs, progress, &queue, &failures))
                    }
                    None => work_queue(study, cfg, jobs, progress, &queue, &failures),
                }
            });
        }
    });
    failures.into_inner().expect("failures")
}

/// Trains runs from `queue` until it is empty (or a stop was asked for), collecting failures.
fn work_queue(
    study: &StudyDir,
    cfg: &Config,
    jobs: usize,
    progress: &(dyn Progress + Sync),
    queue: &std::sync::Mutex<std::vec::IntoIter<RunKey>>,
    failures: &std::sync::Mutex<Vec<(RunKey, StudyError)>>,
) {
    loop {
        // an interrupted run has checkpointed: start no other
        if crate::interrupt::requested() {
            break;
        }
        let Some(key) = queue.lock().expect("queue").next() else {
            break;
        };
        progress.log(&format!("training {}", key.name()));
        // parallel runs report only their log lines, not interleaved bars
        let result = if jobs > 1 {
            train_run(study, cfg, key, &Silent)
        } else {
            train_run(study, cfg, key, progress)
        };
        match result {
            Ok(_) => progress.log(&format!("finished {}", key.name())),
            Err(e) => {
                progress.log(&format!("FAILED {}: {e}", key.name()));
                failures.lock().expect("failures").push((key, e));
            }
        }
    }
}

/// The metrics of one denoiser pair (networks, or empirical-optimal oracles) at one N.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PairMetrics {
    /// Correlation of sample k of `a` with sample k of `b`.
    pub paired_similarity: Vec<f32>,
    /// Median of `paired_similarity`.
    pub median_paired_similarity: f32,
    /// Nearest training images of `a`'s samples (own set: S₁).
    pub nearest_a: Nearest,
    /// Nearest training images of `b`'s samples (own set: S₂).
    pub nearest_b: Nearest,
    /// PSNR vs σ of `a` on its training images.
    pub train_psnr_a: Vec<DenoisingRow>,
    /// PSNR vs σ of `a` on held-out images.
    pub test_psnr_a: Vec<DenoisingRow>,
    /// PSNR vs σ of `b` on its training images.
    pub train_psnr_b: Vec<DenoisingRow>,
    /// PSNR vs σ of `b` on held-out images.
    pub test_psnr_b: Vec<DenoisingRow>,
    /// E‖f_a(y) − f_b(y)‖²/D on held-out noisy images, per σ (same order as the PSNR rows).
    pub model_variance: Vec<f64>,
    /// How the ascent's samples of `a` and `b` ended (absent for Euler, whose schedule is fixed,
    /// and in studies written before).
    #[serde(default)]
    pub outcomes: Option<[SamplerOutcomes; 2]>,
    /// The quality of the samples of `a` and `b` together against held-out images, beside its
    /// floor (as many training images of the data set; absent in studies written before).
    #[serde(default)]
    pub quality: Option<crate::analysis::quality::SampleQuality>,
}

/// How one denoiser's ascent samples ended ([`crate::sampling::ascent::Outcome`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SamplerOutcomes {
    /// σₜ fell below σ_L.
    pub converged: usize,
    /// Stopped by the stall rule.
    pub stalled: usize,
    /// The lowest σₜ each stalled sample reached (where the denoiser's floor is).
    pub stall_sigmas: Vec<f32>,
    /// Hit the step cap.
    pub step_cap: usize,
    /// Diverged.
    pub diverged: usize,
}

impl SamplerOutcomes {
    fn of(trajectories: &[crate::sampling::ascent::Trajectory]) -> Option<Self> {
        use crate::sampling::ascent::Outcome;
        if trajectories.is_empty() {
            return None;
        }
        let mut o = SamplerOutcomes::default();
        for t in trajectories {
            match t.outcome {
                Outcome::Converged => o.converged += 1,
                Outcome::StepCap => o.step_cap += 1,
                Outcome::Diverged => o.diverged += 1,
                Outcome::Stalled => {
                    o.stalled += 1;
                    o.stall_sigmas
                        .push(t.sigma.iter().copied().fold(f32::INFINITY, f32::min));
                }
            }
        }
        Some(o)
    }
}

/// Where a study's run stopped training ([`crate::train::Stopped`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunStop {
    /// The run's folder name.
    pub run: String,
    /// Where and why (absent for runs trained before `stopped.json` existed).
    pub stopped: Option<crate::train::Stopped>,
}

/// The metrics of a replicated pair (pair ≥ 1).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Replicate {
    /// The pair's number.
    pub pair: usize,
    /// The trained networks.
    pub network: PairMetrics,
    /// The empirical-optimal denoisers of the pair's sets.
    pub empirical_optimal: PairMetrics,
}

/// Metrics at one N.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SizeMetrics {
    /// Training-set size.
    pub n: usize,
    /// The trained networks.
    pub network: PairMetrics,
    /// The empirical-optimal denoisers of the same training sets.
    pub empirical_optimal: PairMetrics,
    /// Pairs 1, 2, … (`network` and `empirical_optimal` above are pair 0).
    #[serde(default)]
    pub replicates: Vec<Replicate>,
    /// Where each run stopped training.
    #[serde(default)]
    pub runs: Vec<RunStop>,
    /// Every figure over all pairs, with 95% intervals, and this N's regime (absent in studies
    /// written before).
    #[serde(default)]
    pub summary: Option<verdict::SizeSummary>,
    /// The pairs measured at their runs' snapshots: training time as an axis (empty when the
    /// runs keep none).
    #[serde(default)]
    pub time: Vec<TimePoint>,
}

/// One pair measured at one snapshot step of its two runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TimePoint {
    /// The pair.
    pub pair: usize,
    /// Training steps done.
    pub step: u64,
    /// Median correlation of paired samples.
    pub paired_similarity: f32,
    /// Median correlation of a's and b's samples with their most correlated own training image.
    pub nearest_own_similarity: f32,
    /// f_mem of a's and b's samples together (absent when N = 1).
    pub memorized_fraction: Option<f32>,
    /// Model variance at the smallest evaluation σ.
    pub model_variance: f64,
}

impl SizeMetrics {
    /// (network, empirical optimal) metrics of every pair, pair 0 first.
    pub fn pairs(&self) -> Vec<(&PairMetrics, &PairMetrics)> {
        std::iter::once((&self.network, &self.empirical_optimal))
            .chain(
                self.replicates
                    .iter()
                    .map(|r| (&r.network, &r.empirical_optimal)),
            )
            .collect()
    }
}

/// `study.json`: what the study measured, from which the report draws every figure.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// The configuration.
    pub config: Config,
    /// Similarity measure used everywhere.
    pub similarity: String,
    /// One entry per N, ascending.
    pub sizes: Vec<SizeMetrics>,
    /// What the study found, from the intervals (absent in studies written before).
    #[serde(default)]
    pub verdict: Option<verdict::Verdict>,
}

/// The samples of both denoisers of a pair, with how their ascents ended.
struct PairSamples {
    a: Images,
    b: Images,
    outcomes: Option<[SamplerOutcomes; 2]>,
}

fn pair_metrics(
    (fa, fb): (&impl Denoiser, &impl Denoiser),
    samples: &PairSamples,
    (train_a, train_b): (&Images, &Images),
    (test, pool): (&Images, &Images),
    cfg: &Config,
) -> Result<PairMetrics, StudyError> {
    let (sa, sb) = (&samples.a, &samples.b);
    let both = Images::concat(&[sa.clone(), sb.clone()]);
    let quality = crate::analysis::quality::measure(&both, &pool.take(both.len()), test);
    let paired = paired_similarity(sa, sb);
    let (count, seed, sigmas) = (cfg.eval_count, cfg.seed, &cfg.eval_sigmas);
    let test = test.take(count);
    Ok(PairMetrics {
        median_paired_similarity: median(&paired),
        paired_similarity: paired,
        nearest_a: nearest(sa, train_a, train_b),
        nearest_b: nearest(sb, train_b, train_a),
        train_psnr_a: denoising_table(fa, &train_a.take(count), sigmas, seed)?,
        test_psnr_a: denoising_table(fa, &test, sigmas, seed)?,
        train_psnr_b: denoising_table(fb, &train_b.take(count), sigmas, seed)?,
        test_psnr_b: denoising_table(fb, &test, sigmas, seed)?,
        model_variance: sigmas
            .iter()
            .map(|&sigma| model_variance(fa, fb, &test, sigma, seed))
            .collect::<Result<_, _>>()?,
        outcomes: samples.outcomes.clone(),
        quality,
    })
}

/// What a cached set of samples was drawn with: they are reused only when all of it matches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct SampleKey {
    sampler: Sampler,
    seed: u64,
    count: usize,
    shape: [usize; 3],
    /// The denoiser: the sha256 of a network's weights file, or an oracle's training images.
    denoiser: String,
}

/// The sidecar of a cached `.npy` of samples.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SampleRecord {
    key: SampleKey,
    outcomes: Option<SamplerOutcomes>,
}

/// The sha256 of the weights a study's network loads ([`train::load_denoiser`]'s choice).
fn weights_identity(run: &RunDir) -> Result<String, StudyError> {
    let path = if run.model_ema().exists() {
        run.model_ema()
    } else {
        run.model()
    };
    weights_identity_of(&path)
}

/// The sha256 of a weights file.
fn weights_identity_of(path: &Path) -> Result<String, StudyError> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).map_err(io(path))?;
    Ok(format!("sha256:{:x}", Sha256::digest(&bytes)))
}

/// Samples of a denoiser, cached in `path` with a sidecar `.json` naming the sampler, seed and
/// denoiser they were drawn with: a resumed study does not redraw them, and a changed sampler,
/// seed or retrained network does.
fn samples_cached(
    path: &Path,
    denoiser: &impl Denoiser,
    identity: String,
    shape: [usize; 3],
    cfg: &Config,
) -> Result<(Images, Option<SamplerOutcomes>), StudyError> {
    let key = SampleKey {
        sampler: cfg.sampler.clone(),
        seed: cfg.seed,
        count: cfg.samples,
        shape,
        denoiser: identity,
    };
    let sidecar = path.with_extension("json");
    let cached = std::fs::read_to_string(&sidecar)
        .ok()
        .and_then(|t| serde_json::from_str::<SampleRecord>(&t).ok())
        .filter(|r| r.key == key);
    if let (Some(record), Ok(imgs)) = (cached, crate::data::load_npy(path)) {
        if imgs.len() == cfg.samples && imgs.image_shape() == shape {
            return Ok((imgs, record.outcomes));
        }
    }
    let drawn = cfg
        .sampler
        .sample(denoiser, shape, cfg.samples, 0, cfg.seed, &Silent)?;
    let outcomes = SamplerOutcomes::of(&drawn.trajectories);
    crate::data::write_npy(&drawn.images, path).map_err(io(path))?;
    let record = SampleRecord { key, outcomes };
    crate::io::write_json(&sidecar, &record).map_err(io(&sidecar))?;
    Ok((drawn.images, record.outcomes))
}

/// The study: trains every pending run (`jobs` at a time), then measures it
/// ([`aggregate`]). Runs that fail are reported together after the others have trained.
pub fn run(
    study: &StudyDir,
    cfg: &Config,
    jobs: usize,
    device: &burn::tensor::Device,
    progress: &(dyn Progress + Sync),
) -> Result<Record, StudyError> {
    cfg.validate()?;
    // one study process per folder (cluster array tasks train single runs, each run locked)
    let _lock = study.lock()?;
    let failures = train_all(study, cfg, jobs, progress);
    if !failures.is_empty() {
        return Err(StudyError::Failed(
            failures
                .iter()
                .map(|(key, e)| format!("{}: {e}", key.name()))
                .collect(),
        ));
    }
    measure(study, cfg, device, progress)
}

/// Samples every pair, measures everything and writes `study.json` (and the nearest training
/// images the pair figures show). Every run must be finished.
pub fn aggregate(
    study: &StudyDir,
    cfg: &Config,
    device: &burn::tensor::Device,
    progress: &dyn Progress,
) -> Result<Record, StudyError> {
    let _lock = study.lock()?;
    measure(study, cfg, device, progress)
}

/// [`aggregate`] in a folder this process holds.
fn measure(
    study: &StudyDir,
    cfg: &Config,
    device: &burn::tensor::Device,
    progress: &dyn Progress,
) -> Result<Record, StudyError> {
    cfg.validate()?;
    let missing = pending(study, cfg);
    if !missing.is_empty() {
        return Err(StudyError::Unfinished {
            study: study.root().to_path_buf(),
            runs: missing.iter().map(|k| k.name()).collect(),
        });
    }
    let mut sizes: Vec<usize> = cfg.runs().iter().map(|k| k.n).collect();
    sizes.dedup();
    progress.start("measuring", (sizes.len() * cfg.pairs) as u64);
    let mut out = Vec::new();
    for &n in &sizes {
        let mut measured = Vec::new();
        let mut runs = Vec::new();
        let mut time = Vec::new();
        for pair in 0..cfg.pairs {
            let ka = RunKey {
                n,
                split: Split::A,
                pair,
            };
            measured.push(measure_pair(study, cfg, ka, device)?);
            time.extend(measure_time(study, cfg, ka, device)?);
            for key in [ka, ka.partner()] {
                runs.push(RunStop {
                    run: key.name(),
                    stopped: std::fs::read_to_string(study.run(key).stopped())
                        .ok()
                        .and_then(|t| serde_json::from_str(&t).ok()),
                });
            }
            progress.update((out.len() * cfg.pairs + pair + 1) as u64, "");
        }
        let mut pairs = measured.into_iter();
        let (network, empirical_optimal) = pairs.next().expect("pairs ≥ 1 (validated)");
        let replicates: Vec<Replicate> = pairs
            .enumerate()
            .map(|(i, (network, empirical_optimal))| Replicate {
                pair: i + 1,
                network,
                empirical_optimal,
            })
            .collect();
        let mut size = SizeMetrics {
            n,
            network,
            empirical_optimal,
            replicates,
            runs,
            summary: None,
            time,
        };
        let summary = verdict::summarize(&size.pairs(), n, cfg.seed);
        progress.log(&format!(
            "N = {n} ({} pair(s)): paired similarity {:.3} [{:.3}, {:.3}] (empirical optimal {:.3}); nearest own training image {:.3}; f_mem {}; {:?}",
            cfg.pairs,
            summary.paired_similarity.estimate,
            summary.paired_similarity.lo,
            summary.paired_similarity.hi,
            summary.empirical_paired_similarity.estimate,
            summary.nearest_own_similarity.estimate,
            summary
                .memorized_fraction
                .map_or("–".into(), |f| format!("{:.2}", f.estimate)),
            summary.regime,
        ));
        size.summary = Some(summary);
        out.push(size);
    }
    progress.finish();
    let summaries: Vec<(usize, &verdict::SizeSummary)> = out
        .iter()
        .filter_map(|s| s.summary.as_ref().map(|m| (s.n, m)))
        .collect();
    let mut verdict = verdict::verdict(&summaries);
    verdict.memorization_onset = out
        .iter()
        .filter(|s| s.time.iter().any(|t| t.memorized_fraction.is_some()))
        .map(|s| {
            let points: Vec<(u64, f64)> = s
                .time
                .iter()
                .filter_map(|t| t.memorized_fraction.map(|f| (t.step, f as f64)))
                .collect();
            (s.n, verdict::memorization_onset(&points))
        })
        .collect();
    let last = out
        .iter()
        .flat_map(|s| s.time.iter().map(|t| t.step))
        .max()
        .unwrap_or(0);
    if let Some(sentence) = verdict::onset_statement(&verdict.memorization_onset, last) {
        verdict.statement = format!("{} {sentence}", verdict.statement);
    }
    progress.log(&verdict.statement);
    let record = Record {
        config: cfg.clone(),
        similarity: "correlation: cosine similarity of mean-removed images".into(),
        sizes: out,
        verdict: Some(verdict),
    };
    study.write_record(&record)?;
    Ok(record)
}

/// The training data of one run of the study.
fn resolve(cfg: &Config, key: RunKey) -> Result<crate::train::TrainingData, StudyError> {
    cfg.run_config(key)
        .data
        .resolve()
        .map_err(|e| StudyError::Train {
            run: key.name(),
            source: e.into(),
        })
}

/// Measures the pair of `ka` and its partner at every snapshot step both runs kept: paired
/// similarity, nearest-own similarity, f_mem and model variance (at the smallest evaluation σ).
fn measure_time(
    study: &StudyDir,
    cfg: &Config,
    ka: RunKey,
    device: &burn::tensor::Device,
) -> Result<Vec<TimePoint>, StudyError> {
    let kb = ka.partner();
    let steps: Vec<u64> = cfg
        .run_config(ka)
        .snapshots
        .into_iter()
        .filter(|s| study.run(ka).snapshot(*s).exists() && study.run(kb).snapshot(*s).exists())
        .collect();
    if steps.is_empty() {
        return Ok(Vec::new());
    }
    let (data_a, data_b) = (resolve(cfg, ka)?, resolve(cfg, kb)?);
    let shape = data_a.train.image_shape();
    let sigma = cfg
        .eval_sigmas
        .iter()
        .copied()
        .fold(f32::INFINITY, f32::min);
    let test = data_a.dataset.test.take(cfg.eval_count);
    let mut points = Vec::new();
    for step in steps {
        let load = |k: RunKey| -> Result<(crate::denoise::Learned, String), StudyError> {
            let path = study.run(k).snapshot(step);
            let (net, net_cfg) =
                crate::nn::checkpoint::load_weights(&path, device).map_err(|e| {
                    StudyError::Train {
                        run: k.name(),
                        source: e.into(),
                    }
                })?;
            let id = weights_identity_of(&path)?;
            Ok((
                crate::denoise::Learned::new(net, device.clone(), net_cfg.image_channels),
                id,
            ))
        };
        let ((da, ida), (db, idb)) = (load(ka)?, load(kb)?);
        let (sa, _) = samples_cached(&study.snapshot_samples(ka, step), &da, ida, shape, cfg)?;
        let (sb, _) = samples_cached(&study.snapshot_samples(kb, step), &db, idb, shape, cfg)?;
        let (na, nb) = (
            nearest(&sa, &data_a.train, &data_b.train),
            nearest(&sb, &data_b.train, &data_a.train),
        );
        let mut own = na.own_similarity.clone();
        own.extend(&nb.own_similarity);
        let mut ratios = na.memorization_ratio.clone();
        ratios.extend(&nb.memorization_ratio);
        points.push(TimePoint {
            pair: ka.pair,
            step,
            paired_similarity: median(&paired_similarity(&sa, &sb)),
            nearest_own_similarity: median(&own),
            memorized_fraction: crate::analysis::memorization::memorized_fraction(&ratios),
            model_variance: model_variance(&da, &db, &test, sigma, cfg.seed)?,
        });
    }
    Ok(points)
}

/// Samples and measures the pair of `ka` (split `a`) and its partner, networks and
/// empirical-optimal oracles, and writes the nearest training images the pair figures show.
fn measure_pair(
    study: &StudyDir,
    cfg: &Config,
    ka: RunKey,
    device: &burn::tensor::Device,
) -> Result<(PairMetrics, PairMetrics), StudyError> {
    let kb = ka.partner();
    let n = ka.n;
    let load = |k: RunKey| {
        train::load_denoiser(&study.run(k), device).map_err(|source| StudyError::Train {
            run: k.name(),
            source,
        })
    };
    let (da, rec) = load(ka)?;
    let (db, _) = load(kb)?;
    let (data_a, data_b) = (resolve(cfg, ka)?, resolve(cfg, kb)?);
    if data_a.indices.iter().any(|i| data_b.indices.contains(i)) {
        return Err(StudyError::Overlap(n));
    }
    let shape = rec.image_shape;
    let (sa, outcomes_a) = samples_cached(
        &study.samples(ka),
        &da,
        weights_identity(&study.run(ka))?,
        shape,
        cfg,
    )?;
    let (sb, outcomes_b) = samples_cached(
        &study.samples(kb),
        &db,
        weights_identity(&study.run(kb))?,
        shape,
        cfg,
    )?;
    let samples = PairSamples {
        a: sa,
        b: sb,
        outcomes: outcomes_a.zip(outcomes_b).map(|(a, b)| [a, b]),
    };
    let held_out = (&data_a.dataset.test, &data_a.dataset.pool);
    let network = pair_metrics(
        (&da, &db),
        &samples,
        (&data_a.train, &data_b.train),
        held_out,
        cfg,
    )?;
    let (oa, ob) = (
        EmpiricalOptimal::new(data_a.train.clone()),
        EmpiricalOptimal::new(data_b.train.clone()),
    );
    let oracle_id =
        |d: &crate::train::TrainingData| format!("empirical-optimal:{}", d.train.fingerprint());
    let (ea, oracle_outcomes_a) = samples_cached(
        &study.oracle_samples(ka),
        &oa,
        oracle_id(&data_a),
        shape,
        cfg,
    )?;
    let (eb, oracle_outcomes_b) = samples_cached(
        &study.oracle_samples(kb),
        &ob,
        oracle_id(&data_b),
        shape,
        cfg,
    )?;
    let oracle_samples = PairSamples {
        a: ea,
        b: eb,
        outcomes: oracle_outcomes_a
            .zip(oracle_outcomes_b)
            .map(|(a, b)| [a, b]),
    };
    let empirical_optimal = pair_metrics(
        (&oa, &ob),
        &oracle_samples,
        (&data_a.train, &data_b.train),
        held_out,
        cfg,
    )?;
    for (key, train, near) in [
        (ka, &data_a.train, &network.nearest_a),
        (kb, &data_b.train, &network.nearest_b),
    ] {
        let path = study.nearest_images(key);
        crate::data::write_npy(&train.select(&near.own_index), &path).map_err(io(&path))?;
    }
    Ok((network, empirical_optimal))
}

/// A Slurm job-array script: one task per run, then the aggregate step chained after it.
pub fn slurm_plan(study: &StudyDir, cfg: &Config, binary: &str) -> String {
    let n = cfg.runs().len();
    let dir = study.root().display();
    format!(
        "#!/bin/bash\n\
# Generalization study: {n} training runs as a job array, then one aggregate step.\n\
# Submit with:\n\
#   jid=$(sbatch --parsable sweep.sbatch)\n\
#   sbatch --dependency=afterok:$jid --job-name=tweedie-aggregate --wrap '{binary} generalization --out {dir} --aggregate'\n\
# (the study's configuration is in {dir}/study_config.json; tasks and the aggregate read it)\n\
#SBATCH --job-name=tweedie-study\n\
#SBATCH --array=0-{last}\n\
#SBATCH --cpus-per-task=4\n\
#SBATCH --time=24:00:00\n\
#SBATCH --output={dir}/logs/%A_%a.log\n\
set -euo pipefail\n\
mkdir -p {dir}/logs\n\
{binary} generalization --out {dir} --task \"$SLURM_ARRAY_TASK_ID\"\n",
        last = n - 1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::euler::EulerParams;

    /// A study on a small synthetic family that does not exist on disk: nothing may load it.
    /// Small networks train one run per core, never more runs than are pending; the paper's
    /// network one at a time.
    #[test]
    fn default_jobs_follow_the_network_and_the_pending_runs() {
        let mut cfg = config(&[2, 4]);
        let cores = rayon::current_num_threads();
        assert_eq!(default_jobs(&cfg, 8), cores.min(8));
        assert_eq!(default_jobs(&cfg, 1), 1);
        assert_eq!(default_jobs(&cfg, 0), 1);
        cfg.train.net.channels = 64;
        cfg.train.net.blocks = 3;
        assert_eq!(default_jobs(&cfg, 8), 1);
    }

    fn config(sizes: &[usize]) -> Config {
        use crate::nn::{Arch, NetConfig};
        let net = NetConfig {
            arch: Arch::BfUnet,
            image_channels: 1,
            channels: 4,
            blocks: 1,
            layers: 5,
        };
        let data = crate::train::DataConfig::new("/nonexistent/disks.npy");
        let mut train = TrainConfig::new(data, net, 10, 4, 0, crate::DeviceSpec::Cpu);
        train.lr_halve_every = 100;
        train.lr_warmup = 0;
        train.sigma_sampling = crate::train::SigmaSampling::Uniform;
        train.loss_weighting = Default::default();
        train.checkpoint_every = 10;
        train.log_every = 10;
        train.val_sigmas = vec![0.1];
        train.val_count = 4;
        train.min_epoch = 4;
        Config {
            sizes: sizes.to_vec(),
            train,
            samples: 4,
            sampler: Sampler::default(),
            eval_sigmas: vec![0.1],
            eval_count: 8,
            seed: 3,
            run_seeds: RunSeeds::Keyed,
            pairs: 1,
        }
    }

    #[test]
    fn run_seeds_depend_on_the_run_not_on_the_other_sizes() {
        let (small, large) = (config(&[1, 8]), config(&[1, 4, 8]));
        for split in [Split::A, Split::B] {
            let key = RunKey {
                n: 8,
                split,
                pair: 0,
            };
            assert_eq!(small.run_config(key).seed, large.run_config(key).seed);
        }
        let seeds: Vec<u64> = large
            .runs()
            .iter()
            .map(|k| large.run_config(*k).seed)
            .collect();
        for (i, a) in seeds.iter().enumerate() {
            assert!(!seeds[i + 1..].contains(a), "two runs share seed {a}");
        }
        // a study with the next seed shares no run seed with this one
        let next = Config {
            seed: 4,
            ..large.clone()
        };
        for k in next.runs() {
            assert!(!seeds.contains(&next.run_config(k).seed));
        }
        // a run recorded on another device is still the study's run
        let dir = tempfile::tempdir().unwrap();
        let study = StudyDir::new(dir.path());
        let key = RunKey {
            n: 4,
            split: Split::A,
            pair: 0,
        };
        let mut recorded = large.run_config(key);
        recorded.device = "cuda".parse().unwrap();
        let record = crate::train::record::RunRecord {
            config: recorded,
            tweedie_version: "test".into(),
            data_fingerprint: String::new(),
            train_fingerprint: String::new(),
            train_images: 4,
            image_shape: [1, 8, 8],
            num_params: 0,
        };
        study.run(key).write_config(&record).unwrap();
        assert_eq!(run_state(&study, &large, key), RunState::Partial);
        // studies written before keep their positional seeds
        let old = Config {
            run_seeds: RunSeeds::Positional,
            ..large.clone()
        };
        assert_eq!(
            old.run_config(RunKey {
                n: 8,
                split: Split::B,
                pair: 0,
            })
            .seed,
            3 + 1 + 5
        );
        let mut json = serde_json::to_value(&large).unwrap();
        json.as_object_mut().unwrap().remove("run_seeds");
        let read: Config = serde_json::from_value(json).unwrap();
        assert_eq!(read.run_seeds, RunSeeds::Positional);
    }

    #[test]
    fn adding_pairs_changes_no_earlier_run_and_new_pairs_get_their_own_splits() {
        let (one, three) = (
            config(&[4, 8]),
            Config {
                pairs: 3,
                ..config(&[4, 8])
            },
        );
        for key in one.runs() {
            assert_eq!(one.run_config(key), three.run_config(key), "{}", key.name());
        }
        let keys = three.runs();
        assert_eq!(keys.len(), 12);
        let configs: Vec<TrainConfig> = keys.iter().map(|k| three.run_config(*k)).collect();
        for (i, a) in configs.iter().enumerate() {
            for b in &configs[i + 1..] {
                assert_ne!(a.seed, b.seed);
            }
        }
        let p1 = RunKey {
            n: 4,
            split: Split::A,
            pair: 1,
        };
        assert_eq!(p1.name(), "N4-a-p1");
        let (c0, c1) = (
            three.run_config(RunKey { pair: 0, ..p1 }),
            three.run_config(p1),
        );
        assert_ne!(c0.data.split.split_seed, c1.data.split.split_seed);
        // a pair's two runs share their split seed: their sets are disjoint
        assert_eq!(
            c1.data.split.split_seed,
            three.run_config(p1.partner()).data.split.split_seed
        );
    }

    /// Cached samples are reused only for the same sampler, seed and denoiser.
    #[test]
    fn cached_samples_follow_sampler_seed_and_weights() {
        use crate::data::synthetic::Family;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.npy");
        let train = Family::Disks(Default::default()).generate(8, 4, 1).unwrap();
        let oracle = EmpiricalOptimal::new(train);
        let cfg = config(&[4]);
        let shape = [1, 8, 8];
        let draw = |cfg: &Config, id: &str| {
            samples_cached(&path, &oracle, id.into(), shape, cfg)
                .unwrap()
                .0
        };
        let first = draw(&cfg, "w1");
        // a planted array stands for "reused": the cache returns it only while the key holds
        let planted = Images::zeros([cfg.samples, 1, 8, 8]);
        crate::data::write_npy(&planted, &path).unwrap();
        assert_eq!(draw(&cfg, "w1").as_slice(), planted.as_slice());
        // another denoiser (retrained weights): drawn again
        assert_eq!(draw(&cfg, "w2").as_slice(), first.as_slice());
        crate::data::write_npy(&planted, &path).unwrap();
        let reseeded = Config {
            seed: 4,
            ..cfg.clone()
        };
        assert_ne!(draw(&reseeded, "w2").as_slice(), planted.as_slice());
        crate::data::write_npy(&planted, &path).unwrap();
        let euler = Config {
            sampler: Sampler::Euler(EulerParams::default()),
            ..reseeded
        };
        assert_ne!(draw(&euler, "w2").as_slice(), planted.as_slice());
    }

    #[test]
    fn a_bad_sampler_is_refused_before_anything_trains() {
        let dir = tempfile::tempdir().unwrap();
        let study = StudyDir::new(dir.path().join("study"));
        let cfg = Config {
            sampler: Sampler::Euler(EulerParams {
                sigma_min: 2.0,
                ..EulerParams::default()
            }),
            ..config(&[1, 4])
        };
        let device = burn::tensor::Device::flex();
        let err = run(&study, &cfg, 1, &device, &Silent).unwrap_err();
        match &err {
            StudyError::Invalid(f) => assert_eq!(f.field, "sampler.sigma_min", "{err}"),
            other => panic!("expected a refused sampler, got {other}"),
        }
        assert!(
            !study.root().join("runs").exists(),
            "a run started training"
        );
    }
}
