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

use crate::analysis::memorization::{median, model_variance, nearest, paired_similarity, Nearest};
use crate::analysis::metrics::{denoising_table, DenoisingRow};
use crate::config::{check, InvalidField};
use crate::data::{Images, Split};
use crate::denoise::{DenoiseError, Denoiser, EmpiricalOptimal};
use crate::progress::{Progress, Silent};
use crate::rng::{derive, Purpose};

use crate::run::RunDir;
pub use crate::run::RunState;
use crate::sampling::{Sampler, SamplingError};
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
}

impl RunKey {
    /// Folder name, e.g. `N100-a`.
    pub fn name(&self) -> String {
        format!(
            "N{}-{}",
            self.n,
            match self.split {
                Split::A => "a",
                Split::B => "b",
            }
        )
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
    /// Another process is running this study.
    #[error(transparent)]
    Locked(#[from] crate::lock::LockError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StudyError + '_ {
    move |source| StudyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A study folder: `study_config.json`, `runs/`, `samples/`, `study.json`, `figures/`,
/// `report.html`.
#[derive(Clone, Debug)]
pub struct StudyDir {
    root: PathBuf,
}

impl StudyDir {
    /// The study at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `study_config.json`.
    pub fn config(&self) -> PathBuf {
        self.root.join("study_config.json")
    }
    /// The run folder of one run.
    pub fn run(&self, key: RunKey) -> RunDir {
        RunDir::new(self.root.join("runs").join(key.name()))
    }
    /// Samples of one network.
    pub fn samples(&self, key: RunKey) -> PathBuf {
        self.root
            .join("samples")
            .join(format!("{}.npy", key.name()))
    }
    /// Samples of the empirical-optimal denoiser of one training set.
    pub fn oracle_samples(&self, key: RunKey) -> PathBuf {
        self.root
            .join("samples")
            .join(format!("{}-empirical.npy", key.name()))
    }
    /// The nearest own training image of each sample of one network (for the pair figures).
    pub fn nearest_images(&self, key: RunKey) -> PathBuf {
        self.root
            .join("samples")
            .join(format!("{}-nearest.npy", key.name()))
    }
    /// `study.json`.
    pub fn record(&self) -> PathBuf {
        self.root.join("study.json")
    }
    /// `figures/`.
    pub fn figures(&self) -> PathBuf {
        self.root.join("figures")
    }
}

impl Config {
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

    /// Every run, in order: N ascending, `a` before `b`.
    pub fn runs(&self) -> Vec<RunKey> {
        let mut sizes = self.sizes.clone();
        sizes.sort_unstable();
        sizes.dedup();
        sizes
            .into_iter()
            .flat_map(|n| [Split::A, Split::B].map(|split| RunKey { n, split }))
            .collect()
    }

    /// The training configuration of one run: the template with N, the split and a seed of
    /// its own (see [`RunSeeds`]), so the two networks of a pair are initialised differently
    /// and agree only through what they learn.
    pub fn run_config(&self, key: RunKey) -> TrainConfig {
        let mut cfg = self.train.clone();
        cfg.data.split.train_size = Some(key.n);
        cfg.data.split.split = key.split;
        cfg.seed = match self.run_seeds {
            RunSeeds::Keyed => derive(
                self.seed,
                Purpose::StudyRun,
                &[key.n as u64, key.split as u64],
            ),
            RunSeeds::Positional => {
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
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
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
            });
        }
    });
    failures.into_inner().expect("failures")
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
}

fn pair_metrics(
    (fa, fb): (&impl Denoiser, &impl Denoiser),
    (sa, sb): (&Images, &Images),
    (train_a, train_b): (&Images, &Images),
    test: &Images,
    cfg: &Config,
) -> Result<PairMetrics, StudyError> {
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
    })
}

/// Samples of a denoiser, cached in `path` (so a resumed study does not redraw them).
fn samples_cached(
    path: &Path,
    denoiser: &impl Denoiser,
    shape: [usize; 3],
    cfg: &Config,
) -> Result<Images, StudyError> {
    if let Ok(imgs) = crate::data::load_npy(path) {
        if imgs.len() == cfg.samples && imgs.image_shape() == shape {
            return Ok(imgs);
        }
    }
    let images = cfg
        .sampler
        .sample(denoiser, shape, cfg.samples, 0, cfg.seed, &Silent)?
        .images;
    crate::data::write_npy(&images, path).map_err(io(path))?;
    Ok(images)
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
    let _lock = crate::lock::FolderLock::acquire(study.root())?;
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
    let _lock = crate::lock::FolderLock::acquire(study.root())?;
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
    progress.start("measuring", sizes.len() as u64);
    let mut out = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let (ka, kb) = (RunKey { n, split: Split::A }, RunKey { n, split: Split::B });
        let load = |k: RunKey| {
            train::load_denoiser(&study.run(k), device).map_err(|source| StudyError::Train {
                run: k.name(),
                source,
            })
        };
        let (da, rec) = load(ka)?;
        let (db, _) = load(kb)?;
        let data_a = cfg
            .run_config(ka)
            .data
            .resolve()
            .map_err(|e| StudyError::Train {
                run: ka.name(),
                source: e.into(),
            })?;
        let data_b = cfg
            .run_config(kb)
            .data
            .resolve()
            .map_err(|e| StudyError::Train {
                run: kb.name(),
                source: e.into(),
            })?;
        if data_a.indices.iter().any(|i| data_b.indices.contains(i)) {
            return Err(StudyError::Overlap(n));
        }
        let shape = rec.image_shape;
        let sa = samples_cached(&study.samples(ka), &da, shape, cfg)?;
        let sb = samples_cached(&study.samples(kb), &db, shape, cfg)?;
        let test = &data_a.dataset.test;
        let network = pair_metrics(
            (&da, &db),
            (&sa, &sb),
            (&data_a.train, &data_b.train),
            test,
            cfg,
        )?;
        let (oa, ob) = (
            EmpiricalOptimal::new(data_a.train.clone()),
            EmpiricalOptimal::new(data_b.train.clone()),
        );
        let ea = samples_cached(&study.oracle_samples(ka), &oa, shape, cfg)?;
        let eb = samples_cached(&study.oracle_samples(kb), &ob, shape, cfg)?;
        let empirical_optimal = pair_metrics(
            (&oa, &ob),
            (&ea, &eb),
            (&data_a.train, &data_b.train),
            test,
            cfg,
        )?;
        progress.log(&format!(
            "N = {n}: paired similarity {:.3} (empirical optimal {:.3}); sample ↔ nearest own training image {:.3}",
            network.median_paired_similarity,
            empirical_optimal.median_paired_similarity,
            network.nearest_a.median_own_similarity
        ));
        for (key, train, near) in [
            (ka, &data_a.train, &network.nearest_a),
            (kb, &data_b.train, &network.nearest_b),
        ] {
            let path = study.nearest_images(key);
            crate::data::write_npy(&train.select(&near.own_index), &path).map_err(io(&path))?;
        }
        out.push(SizeMetrics {
            n,
            network,
            empirical_optimal,
        });
        progress.update(i as u64 + 1, "");
    }
    progress.finish();
    let record = Record {
        config: cfg.clone(),
        similarity: "correlation: cosine similarity of mean-removed images".into(),
        sizes: out,
    };
    let path = study.record();
    crate::io::write_json(&path, &record).map_err(io(&path))?;
    Ok(record)
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
        }
    }

    #[test]
    fn run_seeds_depend_on_the_run_not_on_the_other_sizes() {
        let (small, large) = (config(&[1, 8]), config(&[1, 4, 8]));
        for split in [Split::A, Split::B] {
            let key = RunKey { n: 8, split };
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
        };
        let mut recorded = large.run_config(key);
        recorded.device = "cuda".parse().unwrap();
        let record = crate::run::RunRecord {
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
                split: Split::B
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
