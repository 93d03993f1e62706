//! The demo: the paper's finding at CPU size, as one resumable folder. A generalization study
//! at a memorizing N and a generalizing N (pairs of networks on disjoint sets, paired samples
//! from the same noise, nearest training images, train/test PSNR gap, model variance), then the
//! Jacobian of one network of each N at the same noisy held-out image (top eigenvectors, tr J vs
//! σ). `demo.json` records what ran and how long it took; the index page is drawn from it and
//! the records it points to.

use super::generalization::{self as study, RunKey, StudyDir, StudyError};
use super::jacobian::{self as jac, JacobianDir, JacobianError, Subject};
use crate::data::Split;
use crate::progress::Progress;
use crate::train::{self, TrainError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
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
    /// Files.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// A demo folder: `demo.json`, `study/`, `jacobian/`, `index.html`.
#[derive(Clone, Debug)]
pub struct DemoDir {
    root: PathBuf,
}

impl DemoDir {
    /// The folder at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `demo.json`.
    pub fn record(&self) -> PathBuf {
        self.root.join("demo.json")
    }
    /// The study.
    pub fn study(&self) -> StudyDir {
        StudyDir::new(self.root.join("study"))
    }
    /// The Jacobian folder of a run.
    pub fn jacobian(&self, key: RunKey) -> JacobianDir {
        JacobianDir::new(self.root.join("jacobian").join(key.name()))
    }
}

impl Config {
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

/// Runs (or resumes) the study, opens the networks, writes `demo.json`.
pub fn run(
    cfg: &Config,
    dir: &DemoDir,
    device: &burn::tensor::Device,
    progress: &(dyn Progress + Sync),
) -> Result<Record, DemoError> {
    let start = Instant::now();
    let sdir = dir.study();
    let io = |path: PathBuf| move |source| DemoError::Io { path, source };
    std::fs::create_dir_all(sdir.root()).map_err(io(sdir.root().to_path_buf()))?;
    crate::io::write_json(&sdir.config(), &cfg.study).map_err(io(sdir.config()))?;
    let jobs = study::default_jobs(&cfg.study, study::pending(&sdir, &cfg.study).len());
    study::run(&sdir, &cfg.study, jobs, device, progress)?;
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
    crate::io::write_json(&dir.record(), &record).map_err(io(dir.record()))?;
    Ok(record)
}
