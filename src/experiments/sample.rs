//! Samples from a run's network — its implicit prior, by Miyasawa/Tweedie — with either
//! sampler: sample k starts from the noise of stream (seed, k), so a seed names the samples
//! whatever the batch. `trajectory.json` records the sampler, the seed and each ascent's σₜ,
//! hₜ and how it ended, with the counts a reader must see (step cap, stalled, diverged).

use super::dir::Experiment;
use crate::config::{check, InvalidField};
use crate::progress::Progress;
use crate::sampling::ascent::{Outcome, Trajectory};
use crate::sampling::{Sampler, Samples, SamplingError};
use crate::train::record::RunDir;
use crate::train::{TrainError, Weights};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What to draw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The sampler and its parameters.
    pub sampler: Sampler,
    /// Number of samples.
    pub count: usize,
    /// Sample k starts from the noise of stream (seed, k).
    pub seed: u64,
    /// (h, w) of the samples (default: the size the run was trained on; required for an
    /// imported network).
    pub size: Option<[usize; 2]>,
    /// Which weights of the run.
    pub weights: Weights,
}

impl Config {
    /// Checks the settings before the network is loaded.
    pub fn validate(&self) -> Result<(), InvalidField> {
        check(self.count >= 1, "count", self.count, "must be ≥ 1")?;
        self.sampler.validate()
    }
}

/// `trajectory.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// The run folder sampled.
    pub run: String,
    /// The sampler.
    pub sampler: Sampler,
    /// The seed.
    pub seed: u64,
    /// Samples drawn.
    pub count: usize,
    /// Ascents that reached the step cap before σₜ fell below the final level.
    pub step_cap: usize,
    /// Ascents whose σₜ rose above 10·σ₀.
    pub diverged: usize,
    /// Ascents that stopped making progress (the denoised images at their lowest σₜ).
    pub stalled: usize,
    /// One per ascent sample (none for Euler: its schedule is fixed).
    pub trajectories: Vec<Trajectory>,
}

/// Sampling as an [`Experiment`]: its record is `trajectory.json` in the output folder.
pub struct Sample;

impl Experiment for Sample {
    const NAME: &'static str = "sampling";
    const RECORD_FILE: &'static str = "trajectory.json";
    type Config = Config;
    type Record = Record;
}

/// Errors of sampling.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// A bad setting.
    #[error("invalid sampling setting")]
    Invalid(#[from] InvalidField),
    /// Loading the run.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The sampler failed.
    #[error(transparent)]
    Sampling(#[from] SamplingError),
    /// An imported network and no size given.
    #[error("{0} holds an imported network, trained on images tweedie never saw: give the samples' size")]
    SizeNeeded(PathBuf),
    /// A batch the machine's memory cannot hold.
    #[error(transparent)]
    Memory(#[from] crate::resources::Shortfall),
}

/// What sampling drew.
pub struct Drawn {
    /// The record (`trajectory.json`).
    pub record: Record,
    /// The samples `[count, c, h, w]` and their trajectories.
    pub samples: Samples,
}

/// Loads the run's network and draws the samples.
pub fn run(
    cfg: &Config,
    run: &RunDir,
    device: &burn::tensor::Device,
    progress: &dyn Progress,
) -> Result<Drawn, SampleError> {
    cfg.validate()?;
    let (denoiser, origin) = crate::train::load_network(run, device, cfg.weights)?;
    let shape = match (cfg.size, origin.image_shape()) {
        (Some([h, w]), _) => [origin.image_channels(), h, w],
        (None, Some(shape)) => shape,
        (None, None) => return Err(SampleError::SizeNeeded(run.root().to_path_buf())),
    };
    if crate::device::is_host(device) {
        let [_, h, w] = shape;
        let per_image = origin.net().inference_bytes(1, h, w);
        let batch = cfg.sampler.batch().min(cfg.count);
        let available = crate::resources::available_memory();
        crate::resources::check_batch(per_image, batch, [h, w], available, "")?;
    }
    let samples = cfg
        .sampler
        .sample(&denoiser, shape, cfg.count, 0, cfg.seed, progress)?;
    let count_of = |o: Outcome| {
        samples
            .trajectories
            .iter()
            .filter(|t| t.outcome == o)
            .count()
    };
    let record = Record {
        run: run.root().display().to_string(),
        sampler: cfg.sampler.clone(),
        seed: cfg.seed,
        count: cfg.count,
        step_cap: count_of(Outcome::StepCap),
        diverged: count_of(Outcome::Diverged),
        stalled: count_of(Outcome::Stalled),
        trajectories: samples.trajectories.clone(),
    };
    Ok(Drawn { record, samples })
}
