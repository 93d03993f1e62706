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

use crate::analysis::metrics::{add_noise, denoising_table, DenoisingRow};
use crate::analysis::similarity::correlation;
use crate::data::{Images, Split};
use crate::denoise::{DenoiseError, Denoiser, EmpiricalOptimal};
use crate::progress::{Progress, Silent};
use crate::report::grid::{save_grid, Scaling};
use crate::report::html::Html;
use crate::report::plot::{save_line_plot, LinePlot, Scale, Series};
use crate::report::ReportError;
use crate::run::RunDir;
use crate::sampling::ascent::{self, AscentParams};
use crate::sampling::euler::{self, EulerParams};
use crate::sampling::SamplingError;
use crate::train::{self, RunRecord, TrainConfig, TrainError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The whole configuration of a study (`study_config.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudyConfig {
    /// Training-set sizes N.
    pub sizes: Vec<usize>,
    /// Training configuration shared by every run; its split and seed are set per run.
    pub train: TrainConfig,
    /// Paired samples per network.
    pub samples: usize,
    /// The sampler (the same for networks and oracles).
    pub sampler: StudySampler,
    /// Noise levels of the PSNR and model-variance measurements.
    pub eval_sigmas: Vec<f32>,
    /// Images used for PSNR and model variance.
    pub eval_count: usize,
    /// Seed of the samples (shared by the a and b networks: that is the pairing) and base of
    /// the runs' seeds.
    pub seed: u64,
}

/// How a study draws its paired samples.
///
/// The paper uses the stochastic ascent. Its injected noise is shared by the two networks of a
/// pair (same seeds), but every small difference between them is amplified along the way, so
/// networks that are not yet well converged give paired samples that drift apart; the
/// deterministic Euler sampler from the same initial noise separates "same function" from
/// "same trajectory" (compare both on your data).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StudySampler {
    /// Stochastic coarse-to-fine ascent.
    Ascent(AscentParams),
    /// Probability-flow Euler steps.
    Euler(EulerParams),
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
    /// Writing figures or pages.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// File system.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A bad configuration or an incomplete study.
    #[error("{0}")]
    Invalid(String),
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
    /// `figures/`.
    pub fn figures(&self) -> PathBuf {
        self.root.join("figures")
    }
}

impl StudyConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), StudyError> {
        if self.sizes.is_empty() || self.sizes.contains(&0) {
            return Err(StudyError::Invalid(
                "--sizes must list training-set sizes ≥ 1, e.g. 1,10,100".into(),
            ));
        }
        if self.samples == 0 || self.eval_count == 0 || self.eval_sigmas.is_empty() {
            return Err(StudyError::Invalid(
                "--samples, --eval-count and --eval-sigmas must be non-empty".into(),
            ));
        }
        if let StudySampler::Ascent(p) = &self.sampler {
            p.validate()?;
        }
        self.train.validate().map_err(|source| StudyError::Train {
            run: "(template)".into(),
            source,
        })
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
    /// its own (seed + position in the sweep), so the two networks of a pair are initialised
    /// differently and agree only through what they learn.
    pub fn run_config(&self, key: RunKey) -> TrainConfig {
        let index = self.runs().iter().position(|k| *k == key).unwrap_or(0) as u64;
        let mut cfg = self.train.clone();
        cfg.data.split.train_size = Some(key.n);
        cfg.data.split.split = key.split;
        cfg.seed = self.seed.wrapping_add(1 + index);
        cfg
    }
}

/// What a run folder holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    /// Trained with this configuration.
    Finished,
    /// Started (a checkpoint may exist); training resumes it.
    Partial,
    /// Nothing usable.
    Missing,
}

/// Inspects a run folder.
pub fn run_state(study: &StudyDir, cfg: &StudyConfig, key: RunKey) -> RunState {
    let run = study.run(key);
    match run.read_config::<RunRecord>() {
        Ok(rec) if rec.config == cfg.run_config(key) && run.model().exists() => RunState::Finished,
        Ok(rec) if rec.config == cfg.run_config(key) => RunState::Partial,
        _ => RunState::Missing,
    }
}

/// Trains one run unless it is finished: resumes a partial run, starts over a broken one.
pub fn train_run(
    study: &StudyDir,
    cfg: &StudyConfig,
    key: RunKey,
    progress: &dyn Progress,
) -> Result<RunState, StudyError> {
    let state = run_state(study, cfg, key);
    let run = study.run(key);
    let wrap = |source| StudyError::Train {
        run: key.name(),
        source,
    };
    match state {
        RunState::Finished => return Ok(state),
        RunState::Missing if run.root().exists() => {
            // a folder we can't use (deleted config, other settings): start it over
            std::fs::remove_dir_all(run.root()).map_err(io(run.root()))?;
        }
        _ => {}
    }
    let tc = cfg.run_config(key);
    train::train(&tc, &run, true, progress).map_err(wrap)?;
    Ok(state)
}

/// The runs still to train.
pub fn pending(study: &StudyDir, cfg: &StudyConfig) -> Vec<RunKey> {
    cfg.runs()
        .into_iter()
        .filter(|k| run_state(study, cfg, *k) != RunState::Finished)
        .collect()
}

/// Trains every pending run, `jobs` at a time; returns the failures (the others are done).
pub fn train_all(
    study: &StudyDir,
    cfg: &StudyConfig,
    jobs: usize,
    progress: &(dyn Progress + Sync),
) -> Vec<(RunKey, StudyError)> {
    let todo = pending(study, cfg);
    let queue = std::sync::Mutex::new(todo.into_iter());
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
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

/// Nearest-neighbour statistics of one set of samples against a training set.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Nearest {
    /// Correlation with the most correlated image of the network's own training set.
    pub own_similarity: Vec<f32>,
    /// Same, in the other network's training set.
    pub other_similarity: Vec<f32>,
    /// Index (in the own training set) of the nearest image by L2.
    pub own_index: Vec<usize>,
    /// L2 distance to the nearest own training image.
    pub own_l2: Vec<f32>,
    /// d₁/d₂: nearest over second-nearest L2 distance in the own set (absent when N = 1).
    pub memorization_ratio: Vec<Option<f32>>,
    /// Median of `own_similarity`.
    pub median_own_similarity: f32,
    /// Median of `other_similarity`.
    pub median_other_similarity: f32,
}

fn median(v: &[f32]) -> f32 {
    if v.is_empty() {
        return f32::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[s.len() / 2]
}

fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f32>()
        .sqrt()
}

/// Nearest training images of each sample.
pub fn nearest(samples: &Images, own: &Images, other: &Images) -> Nearest {
    let mut out = Nearest::default();
    for k in 0..samples.len() {
        let s = samples.image(k);
        let best = |set: &Images| {
            (0..set.len())
                .map(|i| correlation(s, set.image(i)))
                .fold(f32::NEG_INFINITY, f32::max)
        };
        out.own_similarity.push(best(own));
        out.other_similarity.push(best(other));
        let mut d: Vec<(f32, usize)> = (0..own.len()).map(|i| (l2(s, own.image(i)), i)).collect();
        d.sort_by(|a, b| a.0.total_cmp(&b.0));
        out.own_index.push(d[0].1);
        out.own_l2.push(d[0].0);
        out.memorization_ratio
            .push(d.get(1).map(|second| d[0].0 / second.0.max(1e-12)));
    }
    out.median_own_similarity = median(&out.own_similarity);
    out.median_other_similarity = median(&out.other_similarity);
    out
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

/// `study.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StudyReport {
    /// The configuration.
    pub config: StudyConfig,
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
    cfg: &StudyConfig,
) -> Result<PairMetrics, StudyError> {
    let paired: Vec<f32> = (0..sa.len())
        .map(|k| correlation(sa.image(k), sb.image(k)))
        .collect();
    let seed = cfg.seed ^ 0xe7a1;
    let count = cfg.eval_count;
    let mut model_variance = Vec::new();
    for (j, &sigma) in cfg.eval_sigmas.iter().enumerate() {
        let y = add_noise(&test.take(count), sigma, seed.wrapping_add(j as u64));
        let (a, b) = (fa.denoise(&y, Some(sigma))?, fb.denoise(&y, Some(sigma))?);
        let d = a.as_slice().len() as f64;
        model_variance.push(
            a.as_slice()
                .iter()
                .zip(b.as_slice())
                .map(|(u, v)| ((u - v) as f64).powi(2))
                .sum::<f64>()
                / d,
        );
    }
    Ok(PairMetrics {
        median_paired_similarity: median(&paired),
        paired_similarity: paired,
        nearest_a: nearest(sa, train_a, train_b),
        nearest_b: nearest(sb, train_b, train_a),
        train_psnr_a: denoising_table(fa, &train_a.take(count), &cfg.eval_sigmas, seed)?,
        test_psnr_a: denoising_table(fa, &test.take(count), &cfg.eval_sigmas, seed)?,
        train_psnr_b: denoising_table(fb, &train_b.take(count), &cfg.eval_sigmas, seed)?,
        test_psnr_b: denoising_table(fb, &test.take(count), &cfg.eval_sigmas, seed)?,
        model_variance,
    })
}

/// Samples of a denoiser, cached in `path` (so a resumed study does not redraw them).
fn samples_cached(
    path: &Path,
    denoiser: &impl Denoiser,
    shape: [usize; 3],
    cfg: &StudyConfig,
) -> Result<Images, StudyError> {
    if let Ok(imgs) = crate::data::load_npy(path) {
        if imgs.len() == cfg.samples && imgs.image_shape() == shape {
            return Ok(imgs);
        }
    }
    let images = match &cfg.sampler {
        StudySampler::Ascent(p) => {
            ascent::sample(denoiser, shape, cfg.samples, 0, p, cfg.seed, &Silent)?.images
        }
        StudySampler::Euler(p) => {
            euler::sample(denoiser, shape, cfg.samples, 0, p, cfg.seed, &Silent)?
        }
    };
    crate::data::write_npy(&images, path).map_err(io(path))?;
    Ok(images)
}

/// Samples every pair, measures everything, writes `study.json`, the figures and
/// `report.html`. Every run must be finished.
pub fn aggregate(
    study: &StudyDir,
    cfg: &StudyConfig,
    device: &burn::tensor::Device,
    progress: &dyn Progress,
) -> Result<StudyReport, StudyError> {
    let missing = pending(study, cfg);
    if !missing.is_empty() {
        return Err(StudyError::Invalid(format!(
            "runs not finished: {}; train them first (tweedie generalization --out {} --resume)",
            missing
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", "),
            study.root().display()
        )));
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
            return Err(StudyError::Invalid(format!(
                "N = {n}: training sets a and b overlap"
            )));
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
        pair_figure(
            study,
            n,
            (&sa, &sb),
            (&data_a.train, &data_b.train),
            (&network.nearest_a, &network.nearest_b),
        )?;
        out.push(SizeMetrics {
            n,
            network,
            empirical_optimal,
        });
        progress.update(i as u64 + 1, "");
    }
    progress.finish();
    let report = StudyReport {
        config: cfg.clone(),
        similarity: "correlation: cosine similarity of mean-removed images".into(),
        sizes: out,
    };
    let path = study.root().join("study.json");
    crate::io::write_json(&path, &report).map_err(io(&path))?;
    figures(study, &report)?;
    Ok(report)
}

/// Rows of (sample a, nearest in S₁, sample b, nearest in S₂) for the first few samples of one N.
fn pair_figure(
    study: &StudyDir,
    n: usize,
    (sa, sb): (&Images, &Images),
    (ta, tb): (&Images, &Images),
    (na, nb): (&Nearest, &Nearest),
) -> Result<(), StudyError> {
    let show = sa.len().min(6);
    let mut tiles = Vec::new();
    for k in 0..show {
        tiles.push(sa.select(&[k]));
        tiles.push(ta.select(&[na.own_index[k]]));
        tiles.push(sb.select(&[k]));
        tiles.push(tb.select(&[nb.own_index[k]]));
    }
    std::fs::create_dir_all(study.figures()).map_err(io(&study.figures()))?;
    let zoom = (56 / sa.shape()[2]).max(1);
    save_grid(
        &Images::concat(&tiles),
        4,
        zoom,
        Scaling::Clamp,
        &study.figures().join(format!("pairs_N{n}.png")),
    )
    .map_err(|e| StudyError::Report(e.into()))?;
    Ok(())
}

fn figures(study: &StudyDir, report: &StudyReport) -> Result<(), StudyError> {
    let fig = |e: crate::report::grid::FigureError| StudyError::Report(e.into());
    let dir = study.figures();
    let ns = |f: &dyn Fn(&SizeMetrics) -> f64| -> Vec<(f64, f64)> {
        report.sizes.iter().map(|s| (s.n as f64, f(s))).collect()
    };
    save_line_plot(
        &LinePlot {
            title: "Memorization → generalization".into(),
            x_label: "training-set size N".into(),
            y_label: "median correlation".into(),
            x_scale: Scale::Log,
            y_scale: Scale::Linear,
        },
        &[
            Series {
                label: "network a vs b (paired samples)".into(),
                points: ns(&|s| s.network.median_paired_similarity as f64),
            },
            Series {
                label: "network sample vs nearest training image".into(),
                points: ns(&|s| s.network.nearest_a.median_own_similarity as f64),
            },
            Series {
                label: "empirical-optimal a vs b".into(),
                points: ns(&|s| s.empirical_optimal.median_paired_similarity as f64),
            },
            Series {
                label: "empirical-optimal sample vs nearest training image".into(),
                points: ns(&|s| s.empirical_optimal.nearest_a.median_own_similarity as f64),
            },
        ],
        &dir.join("similarity_vs_n.png"),
    )
    .map_err(fig)?;
    let sigmas = &report.config.eval_sigmas;
    let mv: Vec<Series> = sigmas
        .iter()
        .enumerate()
        .map(|(j, s)| Series {
            label: format!("σ = {s:.3}"),
            points: ns(&|m| m.network.model_variance[j]),
        })
        .collect();
    save_line_plot(
        &LinePlot {
            title: "Model variance E‖f_a(y) − f_b(y)‖²/D on held-out images".into(),
            x_label: "training-set size N".into(),
            y_label: "per-pixel variance".into(),
            x_scale: Scale::Log,
            y_scale: Scale::Log,
        },
        &mv,
        &dir.join("model_variance.png"),
    )
    .map_err(fig)?;
    let psnr: Vec<Series> = report
        .sizes
        .iter()
        .flat_map(|s| {
            [
                Series {
                    label: format!("N = {} train", s.n),
                    points: s
                        .network
                        .train_psnr_a
                        .iter()
                        .map(|r| (r.sigma as f64, r.psnr))
                        .collect(),
                },
                Series {
                    label: format!("N = {} test", s.n),
                    points: s
                        .network
                        .test_psnr_a
                        .iter()
                        .map(|r| (r.sigma as f64, r.psnr))
                        .collect(),
                },
            ]
        })
        .collect();
    save_line_plot(
        &LinePlot {
            title: "Denoising PSNR of network a: training vs held-out images".into(),
            x_label: "σ".into(),
            y_label: "PSNR (dB)".into(),
            x_scale: Scale::Log,
            y_scale: Scale::Linear,
        },
        &psnr,
        &dir.join("psnr_vs_sigma.png"),
    )
    .map_err(fig)?;
    // histograms of paired similarity, as lines of counts per bin
    let bins = 20;
    let hist: Vec<Series> = report
        .sizes
        .iter()
        .map(|s| {
            let mut counts = vec![0usize; bins];
            for v in &s.network.paired_similarity {
                let b = (((v + 1.0) / 2.0) * bins as f32)
                    .floor()
                    .clamp(0.0, bins as f32 - 1.0) as usize;
                counts[b] += 1;
            }
            Series {
                label: format!("N = {}", s.n),
                points: counts
                    .iter()
                    .enumerate()
                    .map(|(b, c)| (-1.0 + (b as f64 + 0.5) * 2.0 / bins as f64, *c as f64))
                    .collect(),
            }
        })
        .collect();
    save_line_plot(
        &LinePlot {
            title: "Paired-sample correlation (network a vs b), histogram".into(),
            x_label: "correlation".into(),
            y_label: "samples".into(),
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
        },
        &hist,
        &dir.join("similarity_histogram.png"),
    )
    .map_err(fig)?;

    let mut html = Html::new(&format!("Generalization study: {}", study.root().display()));
    html.paragraph(&format!(
        "Data {}; N ∈ {:?}; {} samples per network (same seeds for a and b); similarity = {}.",
        report.config.train.data.source,
        report.config.sizes,
        report.config.samples,
        report.similarity
    ));
    let rows: Vec<Vec<String>> = report
        .sizes
        .iter()
        .map(|s| {
            let gap = s
                .network
                .train_psnr_a
                .last()
                .zip(s.network.test_psnr_a.last())
                .map(|(a, b)| a.psnr - b.psnr);
            vec![
                s.n.to_string(),
                format!("{:.3}", s.network.median_paired_similarity),
                format!("{:.3}", s.network.nearest_a.median_own_similarity),
                format!("{:.3}", s.network.nearest_a.median_other_similarity),
                format!("{:.3}", s.empirical_optimal.median_paired_similarity),
                gap.map(|g| format!("{g:.2}")).unwrap_or_default(),
                format!(
                    "{:.2e}",
                    s.network.model_variance.last().copied().unwrap_or(f64::NAN)
                ),
            ]
        })
        .collect();
    html.table(
        &[
            "N",
            "a↔b samples",
            "sample↔nearest S₁",
            "sample↔nearest S₂",
            "empirical-optimal a↔b",
            "train−test PSNR gap (dB, largest σ)",
            "model variance (largest σ)",
        ],
        &rows,
    );
    html.figure("figures/similarity_vs_n.png", "median correlations vs N")
        .figure(
            "figures/similarity_histogram.png",
            "distribution of paired-sample correlations",
        )
        .figure("figures/psnr_vs_sigma.png", "train vs test PSNR")
        .figure("figures/model_variance.png", "model variance vs N");
    html.heading("Samples and their nearest training images");
    for s in &report.sizes {
        html.figure(
            &format!("figures/pairs_N{}.png", s.n),
            &format!("N = {}: each row: sample of a, its nearest image in S₁, sample of b (same seed), its nearest image in S₂", s.n),
        );
    }
    let page = study.root().join("report.html");
    html.save(&page).map_err(io(&page))?;
    Ok(())
}

/// A Slurm job-array script: one task per run, then the aggregate step chained after it.
pub fn slurm_plan(study: &StudyDir, cfg: &StudyConfig, binary: &str) -> String {
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

    #[test]
    fn nearest_finds_copies_and_ratio() {
        let base = crate::data::synthetic::Family::Disks(Default::default())
            .generate(8, 4, 1)
            .unwrap();
        let own = base.select(&[0, 1]);
        let other = base.select(&[2, 3]);
        let samples = base.select(&[1]);
        let nn = nearest(&samples, &own, &other);
        assert!((nn.own_similarity[0] - 1.0).abs() < 1e-5);
        assert!(nn.other_similarity[0] < 0.999);
        assert_eq!(nn.own_index[0], 1);
        assert!(nn.memorization_ratio[0].unwrap() < 1e-3);
    }
}
