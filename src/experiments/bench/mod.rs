//! Speed as an experiment: the workloads the paper's PyTorch code and our experiments run,
//! timed the way `bench/reference.py` times them in PyTorch, into a typed [`Record`] that the
//! CLI prints (with the `RESULT` lines `bench/compare.sh` reads) and can keep as `bench.json`.
//!
//! Each timing carries its effective rate — the FLOPs of direct convolution (or of the
//! distances' GEMM) over the time — beside the machine's GEMM rate measured in the same run,
//! so a reader sees how far a workload is from what the hardware allows, not only from
//! PyTorch. Presets: [`Preset::Paper`] (the 7.6 M-parameter BF-UNet), [`Preset::Scaling`]
//! (its throughput against image and batch size), [`Preset::Study`] (the small networks,
//! samplers and oracle that the demo and the studies run) and [`Preset::Denoise`] (any run's
//! network).

mod denoise;
mod paper;
mod study;

use super::dir::Experiment;
use crate::analysis::spectrum::SpectrumError;
use crate::config::{check, InvalidField};
use crate::data::Images;
use crate::denoise::DenoiseError;
use crate::progress::Progress;
use crate::rng::{stream, Purpose};
use crate::sampling::SamplingError;
use crate::train::TrainError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

pub use paper::PaperWorkload;
pub use study::StudyWorkload;

/// What to time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The workloads.
    pub preset: Preset,
    /// Timed repetitions per workload, after 2 warm-ups; the median is kept.
    pub reps: usize,
}

/// A family of workloads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Preset {
    /// The paper's BF-UNet (3 scales, 20 layers; `channels` in the first scale, 64 in the
    /// paper).
    Paper {
        /// Feature channels of the first scale.
        channels: usize,
        /// Which of its workloads.
        workloads: Vec<PaperWorkload>,
    },
    /// The paper's BF-UNet's training and eval throughput against image and batch size, and
    /// the dense Jacobian's cost against image size.
    Scaling {
        /// Feature channels of the first scale.
        channels: usize,
    },
    /// What the experiments run: BF-UNet 2 × 16 and 2 × 32 steps, both samplers, the
    /// empirical-optimal denoiser on 10 000 images, the dense 28×28 Jacobian.
    Study {
        /// Which of its workloads.
        workloads: Vec<StudyWorkload>,
    },
    /// A run's network (trained or imported) denoising `count` images of `size` per call.
    Denoise {
        /// The run folder.
        run: PathBuf,
        /// Images per call.
        count: usize,
        /// (h, w).
        size: [usize; 2],
    },
}

impl Config {
    /// Checks the settings before any work.
    pub fn validate(&self) -> Result<(), InvalidField> {
        check(self.reps >= 1, "reps", self.reps, "must be ≥ 1")?;
        match &self.preset {
            Preset::Paper {
                channels,
                workloads,
            } => {
                check(*channels >= 1, "channels", channels, "must be ≥ 1")?;
                check(
                    !workloads.is_empty(),
                    "workloads",
                    "none",
                    "name at least one",
                )
            }
            Preset::Scaling { channels } => {
                check(*channels >= 1, "channels", channels, "must be ≥ 1")
            }
            Preset::Study { workloads } => check(
                !workloads.is_empty(),
                "workloads",
                "none",
                "name at least one",
            ),
            Preset::Denoise { count, size, .. } => {
                check(*count >= 1, "count", count, "must be ≥ 1")?;
                check(
                    size[0] >= 1 && size[1] >= 1,
                    "size",
                    format!("{}x{}", size[0], size[1]),
                    "must be at least 1×1",
                )
            }
        }
    }
}

/// `bench.json`: what was timed, on what.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The settings.
    pub config: Config,
    /// What the workloads ran on, and what they are (parameter count, image sizes).
    pub header: String,
    /// The machine's single-precision GEMM rate in GFLOP/s (faer, 2048², all cores): the
    /// practical ceiling of any convolution or distance computation built on GEMMs. Measured
    /// where the tensors live in host memory; `None` on a GPU, where it would compare unlike
    /// with unlike.
    pub gemm_gflops: Option<f64>,
    /// One per workload, in the order run.
    pub timings: Vec<Timing>,
    /// The scaling preset's tables (empty otherwise).
    pub scaling: Vec<ScalingRow>,
}

/// One workload's median time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Its key in `RESULT` lines and in bench/reference.py (`train_2x16_28`).
    pub name: String,
    /// What it is, for people.
    pub what: String,
    /// Median seconds.
    pub seconds: f64,
    /// Items per call and their unit, for a throughput ("images/s").
    pub per_call: Option<(f64, String)>,
    /// The FLOPs of the direct computation, for an effective rate.
    pub flops: Option<f64>,
}

impl Timing {
    /// Items per second.
    pub fn throughput(&self) -> Option<(f64, &str)> {
        self.per_call
            .as_ref()
            .map(|(n, unit)| (n / self.seconds, unit.as_str()))
    }
    /// Effective GFLOP/s (the direct computation's FLOPs over the time).
    pub fn gflops(&self) -> Option<f64> {
        self.flops.map(|f| f / self.seconds / 1e9)
    }
}

/// One row of the scaling preset: throughput at an image size and batch, or the Jacobian's
/// cost at an image size (batch 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ScalingRow {
    /// Images per second of a training step and of an eval pass.
    Throughput {
        /// Image side.
        size: usize,
        /// Batch.
        batch: usize,
        /// Training images per second.
        train: f64,
        /// Eval images per second.
        eval: f64,
    },
    /// Seconds for the dense Jacobian (VJPs) and its eigendecomposition.
    Jacobian {
        /// Image side.
        size: usize,
        /// Seconds of VJPs.
        vjp_seconds: f64,
        /// Seconds of the eigendecomposition.
        eigh_seconds: f64,
    },
}

/// Speed as an [`Experiment`]: `tweedie bench --out DIR` keeps its record as `bench.json`.
pub struct Bench;

impl Experiment for Bench {
    const NAME: &'static str = "benchmark";
    const RECORD_FILE: &'static str = "bench.json";
    type Config = Config;
    type Record = Record;
}

/// Errors of a benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A bad setting.
    #[error("invalid benchmark setting")]
    Invalid(#[from] InvalidField),
    /// Loading the run of the denoise preset.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// A denoiser call failed.
    #[error(transparent)]
    Denoise(#[from] DenoiseError),
    /// A sampler failed.
    #[error(transparent)]
    Sampling(#[from] SamplingError),
    /// The Jacobian's eigendecomposition failed.
    #[error(transparent)]
    Spectrum(#[from] SpectrumError),
}

/// Times the configured workloads on `device`, reporting each one's line to `progress` as it
/// finishes.
pub fn run(
    cfg: &Config,
    device: &burn::tensor::Device,
    progress: &dyn Progress,
) -> Result<Record, BenchError> {
    cfg.validate()?;
    // the limit is the CPU's; on a GPU the line would compare unlike with unlike
    let gemm = || crate::device::is_host(device).then(|| gemm_rate(2048));
    let mut timings = Timings {
        list: Vec::new(),
        progress,
    };
    let (header, gemm_gflops, scaling) = match &cfg.preset {
        Preset::Paper {
            channels,
            workloads,
        } => {
            let gemm = gemm();
            let header = paper::run(*channels, workloads, cfg.reps, device, &mut timings)?;
            (header, gemm, Vec::new())
        }
        Preset::Scaling { channels } => {
            let (header, rows) = paper::scaling(*channels, cfg.reps.min(5), device, progress)?;
            (header, None, rows)
        }
        Preset::Study { workloads } => {
            let gemm = gemm();
            let header = study::run(workloads, cfg.reps, device, &mut timings)?;
            (header, gemm, Vec::new())
        }
        Preset::Denoise { run, count, size } => {
            let header = denoise::run(run, *count, *size, cfg.reps, device, &mut timings)?;
            (header, None, Vec::new())
        }
    };
    Ok(Record {
        config: cfg.clone(),
        header,
        gemm_gflops,
        timings: timings.list,
        scaling,
    })
}

/// The timings so far, each told to the progress as it lands.
struct Timings<'a> {
    list: Vec<Timing>,
    progress: &'a dyn Progress,
}

impl Timings<'_> {
    fn push(
        &mut self,
        name: impl Into<String>,
        what: impl Into<String>,
        seconds: f64,
        per_call: Option<(f64, &str)>,
        flops: Option<f64>,
    ) {
        let timing = Timing {
            name: name.into(),
            what: what.into(),
            seconds,
            per_call: per_call.map(|(n, unit)| (n, unit.to_string())),
            flops,
        };
        self.progress
            .log(&format!("{}: {:.2} ms", timing.what, seconds * 1e3));
        self.list.push(timing);
    }
}

/// Normal noise of `shape` from `seed` (probe stream).
fn random(shape: [usize; 4], seed: u64) -> Images {
    Images::standard_normal(shape, &mut stream(seed, Purpose::Probe, 0))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median seconds of `reps` calls after 2 warm-ups.
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..2 {
        f();
    }
    median(
        (0..reps.max(1))
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// [`time`] of a call that can fail: the first error, if any call failed.
fn try_time<E>(reps: usize, mut f: impl FnMut() -> Result<(), E>) -> Result<f64, E> {
    let mut failed = None;
    let secs = time(reps, || {
        if let Err(e) = f() {
            failed.get_or_insert(e);
        }
    });
    failed.map_or(Ok(secs), Err)
}

/// Seconds of one call of `f`, and its result.
fn once<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let t = Instant::now();
    let out = f();
    (t.elapsed().as_secs_f64(), out)
}

/// The machine's single-precision GEMM rate in GFLOP/s: faer multiplying two `n`×`n` f32
/// matrices on all cores (median of 3 after a warm-up).
fn gemm_rate(n: usize) -> f64 {
    use faer::linalg::matmul::matmul;
    use faer::{Accum, Mat, Par};
    let a = Mat::<f32>::from_fn(n, n, |i, j| ((i * 7 + j * 3) % 11) as f32 - 5.0);
    let b = Mat::<f32>::from_fn(n, n, |i, j| ((i * 5 + j * 2) % 13) as f32 - 6.0);
    let mut c = Mat::<f32>::zeros(n, n);
    let secs = time(3, || {
        matmul(
            c.as_mut(),
            Accum::Replace,
            a.as_ref(),
            b.as_ref(),
            1.0,
            Par::rayon(0),
        )
    });
    2.0 * (n as f64).powi(3) / secs / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Silent;

    fn study(workloads: Vec<StudyWorkload>) -> Config {
        Config {
            preset: Preset::Study { workloads },
            reps: 1,
        }
    }

    #[test]
    fn absurd_settings_are_refused_before_any_work() {
        let mut cfg = study(vec![StudyWorkload::Eo]);
        cfg.reps = 0;
        assert_eq!(cfg.validate().unwrap_err().field, "reps");
        assert_eq!(study(vec![]).validate().unwrap_err().field, "workloads");
        let denoise = Config {
            preset: Preset::Denoise {
                run: "r".into(),
                count: 0,
                size: [8, 8],
            },
            reps: 1,
        };
        assert_eq!(denoise.validate().unwrap_err().field, "count");
    }

    #[test]
    fn a_run_records_each_workload_with_a_positive_time_and_reads_back() {
        let device = crate::DeviceSpec::Cpu.device().unwrap();
        let cfg = study(vec![StudyWorkload::Eo]);
        let record = run(&cfg, &device, &Silent).unwrap();
        let names: Vec<&str> = record.timings.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["eo_10000", "eo_10000_broad"]);
        for t in &record.timings {
            assert!(t.seconds > 0.0 && t.seconds.is_finite(), "{t:?}");
            assert!(t.gflops().unwrap() > 0.0);
            assert_eq!(t.throughput().unwrap().1, "images/s");
        }
        assert!(record.gemm_gflops.unwrap() > 0.0);
        let text = serde_json::to_string(&record).unwrap();
        let back: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(back, record);
        assert_eq!(back.config, cfg);
    }

    #[test]
    fn the_median_is_the_middle_time() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![5.0]), 5.0);
    }
}
