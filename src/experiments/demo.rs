//! The demo: the paper's finding at CPU size, as one resumable folder. A generalization study
//! at a memorizing N and a generalizing N (pairs of networks on disjoint sets, paired samples
//! from the same noise, nearest training images, train/test PSNR gap, model variance), then the
//! Jacobian of one network of each N at the same noisy held-out image (top eigenvectors, tr J vs
//! σ). `demo.json` records what ran and how long it took; the index page is drawn from it and
//! the records it points to.

use super::dir::{Context, Experiment, ExperimentDir, FolderError, Run};
use super::generalization::{self as study, Generalization, RunKey, StudyDir, StudyError};
use super::jacobian::{self as jac, JacobianDir, JacobianError, Subject};
use crate::data::Split;
use crate::train::{self, TrainError};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The demo's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The study (its sizes: the memorizing N first, the generalizing N last).
    pub study: study::Config,
    /// The Jacobian settings (noise levels, eigenvectors kept).
    pub jacobian: jac::Config,
    /// The held-out image the Jacobians are taken at.
    pub image: usize,
    /// Where the data came from, in words (the Fashion-MNIST package, or the fallback).
    pub data_note: String,
}

/// One network opened at the image.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JacobianEntry {
    /// The study run, e.g. `N10-a`.
    pub run: String,
    /// Its training-set size.
    pub n: usize,
    /// The Jacobian folder, relative to the demo folder.
    pub dir: String,
}

/// `demo.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// The configuration.
    pub config: Config,
    /// The study folder, relative to the demo folder.
    pub study: String,
    /// The Jacobian folders.
    pub jacobians: Vec<JacobianEntry>,
    /// Seconds this invocation took (training included unless it resumed finished runs).
    pub seconds: f64,
    /// The tool's version.
    pub tweedie_version: String,
}

/// Errors of the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The study.
    #[error(transparent)]
    Study(#[from] StudyError),
    /// Loading a network.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The Jacobian.
    #[error(transparent)]
    Jacobian(#[from] JacobianError),
    /// Data.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// The demo's folder or its study's.
    #[error(transparent)]
    Folder(#[from] FolderError),
}

/// The demo as an [`Experiment`]: its folder holds `demo.json` (the configuration inside),
/// `study/`, `jacobian/` and `index.html`.
pub struct Demo;

impl Experiment for Demo {
    const NAME: &'static str = "demo";
    const RECORD_FILE: &'static str = "demo.json";
    type Config = Config;
    type Record = Record;
}

/// A demo folder.
pub type DemoDir = ExperimentDir<Demo>;

impl DemoDir {
    /// The study.
    pub fn study(&self) -> StudyDir {
        StudyDir::new(self.root().join("study"))
    }
    /// The Jacobian folder of a run.
    pub fn jacobian(&self, key: RunKey) -> JacobianDir {
        JacobianDir::new(self.root().join("jacobian").join(key.name()))
    }
}

impl Config {
    /// The demo on `data` (a source as `DataConfig` names it; `data_note` says what it is, for
    /// the page): a study at a memorizing and a generalizing N — 10 and 1000, BF-UNet 2 × 16,
    /// trained to convergence but capped at 1200 steps to stay within minutes on a laptop's CPU,
    /// one pair, 32 samples by a quick ascent (h₀ = 0.05, β = 0.5, down to σ = 0.02), no time
    /// axis — and the Jacobians at four noise levels. `quick`: N = 5 and 100, 150 steps of an
    /// 8-channel network, 8 samples, a smoke test of the pipeline. The data are read to give the
    /// network their channels.
    pub fn preset(
        data: &str,
        data_note: String,
        quick: bool,
        seed: u64,
        device: crate::DeviceSpec,
    ) -> Result<Config, crate::data::DataError> {
        use crate::nn::{Arch, NetConfig};
        use crate::sampling::ascent::AscentParams;
        use crate::sampling::Sampler;
        use crate::train::{DataConfig, StopRule, TrainConfig};
        let (sizes, cap, samples, channels) = match quick {
            true => (vec![5, 100], 150, 8, 8),
            false => (vec![10, 1000], 1200, 32, 16),
        };
        let net = NetConfig {
            arch: Arch::BfUnet,
            image_channels: 1,
            channels,
            blocks: 2,
            layers: 20,
        };
        let mut train = TrainConfig::new(DataConfig::new(data), net, cap, 32, seed, device)
            .until_converged(StopRule::default(), cap);
        train.net.image_channels = train.data.resolve()?.train.shape()[1];
        let mut study = study::Config::new(train, sizes);
        study.samples = samples;
        study.pairs = 1;
        study.set_snapshots(0);
        study.sampler = Sampler::Ascent(AscentParams {
            h0: 0.05,
            beta: 0.5,
            sigma_final: 0.02,
            ..AscentParams::default()
        });
        Ok(Config {
            study,
            jacobian: jac::Config {
                sigmas: vec![0.05, 0.1, 0.2, 0.4],
                top: 32,
                method: jac::Method::Auto,
                iterations: None,
                probes: 64,
                seed,
            },
            image: 0,
            data_note,
        })
    }

    /// The runs opened: split `a` of the smallest and of the largest N.
    pub fn jacobian_runs(&self) -> Vec<RunKey> {
        let runs = self.study.runs();
        let mut keys: Vec<RunKey> = [runs.first(), runs.last()]
            .into_iter()
            .flatten()
            .map(|k| RunKey {
                n: k.n,
                split: Split::A,
                pair: 0,
            })
            .collect();
        keys.dedup();
        keys
    }
}

impl Run for Demo {
    type Error = DemoError;

    /// Runs (or resumes) the study, opens the networks, writes `demo.json`.
    fn run(cfg: &Config, dir: &DemoDir, ctx: &Context<'_>) -> Result<Record, DemoError> {
        let start = Instant::now();
        let sdir = dir.study();
        sdir.write_config(&cfg.study)?;
        Generalization::run(&cfg.study, &sdir, ctx)?;
        let (device, progress) = (&ctx.device, ctx.progress);
        let mut jacobians = Vec::new();
        for key in cfg.jacobian_runs() {
            let run = sdir.run(key);
            let (net, record) = train::load_denoiser(&run, device)?;
            let data = record.config.data.resolve()?;
            let image = data
                .dataset
                .test
                .select(&[cfg.image.min(data.dataset.test.len() - 1)]);
            let subject = Subject {
                denoiser: (&net, format!("study/runs/{}", key.name())),
                compare: None,
                image: (image, format!("test:{}", cfg.image)),
            };
            progress.log(&format!("Jacobian of {}", key.name()));
            jac::run(&cfg.jacobian, &subject, &dir.jacobian(key), progress)?;
            jacobians.push(JacobianEntry {
                run: key.name(),
                n: key.n,
                dir: format!("jacobian/{}", key.name()),
            });
        }
        let record = Record {
            config: cfg.clone(),
            study: "study".into(),
            jacobians,
            seconds: start.elapsed().as_secs_f64(),
            tweedie_version: env!("CARGO_PKG_VERSION").into(),
        };
        dir.write_record(&record)?;
        Ok(record)
    }
}
