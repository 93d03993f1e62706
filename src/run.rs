//! A run is a folder and a complete record (DESIGN.md): `config.json` (the resolved
//! configuration, seed, crate version, data fingerprints) written before work starts,
//! `metrics.jsonl`, `checkpoint.safetensors`, `model.safetensors`, `figures/`, `report.html`.
//! Every command that consumes a model takes the run folder.

use crate::analysis::metrics::DenoisingRow;
use crate::train::TrainConfig;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The files of a run folder.
#[derive(Clone, Debug)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// A run folder at `root` (not created yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `config.json`.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }
    /// `metrics.jsonl`.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }
    /// `checkpoint.safetensors`.
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint.safetensors")
    }
    /// `model.safetensors`.
    pub fn model(&self) -> PathBuf {
        self.root.join("model.safetensors")
    }
    /// `model-ema.safetensors`: the moving average of the weights, when training keeps one.
    pub fn model_ema(&self) -> PathBuf {
        self.root.join("model-ema.safetensors")
    }
    /// `figures/`.
    pub fn figures(&self) -> PathBuf {
        self.root.join("figures")
    }
    /// A file directly in the folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// What the folder holds for a run of configuration `want`. A run is ours when its
    /// recorded configuration is `want`, whatever device it was trained on: a study continued
    /// on another machine (`--device`) keeps its runs.
    pub fn state(&self, want: &TrainConfig) -> RunState {
        let ours = match self.read_config::<RunRecord>() {
            Ok(rec) => {
                TrainConfig {
                    device: want.device,
                    ..rec.config
                } == *want
            }
            Err(_) => false,
        };
        match (ours, self.model().exists()) {
            (true, true) => RunState::Finished,
            (true, false) => RunState::Partial,
            (false, _) => RunState::Missing,
        }
    }

    /// Reads and parses `config.json`.
    pub fn read_config<T: DeserializeOwned>(&self) -> std::io::Result<T> {
        let text = std::fs::read_to_string(self.config())?;
        // the caller names the file (every caller wraps the error with its path)
        serde_json::from_str(&text)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
    }

    /// Writes `config.json` atomically, creating the folder.
    pub fn write_config<T: Serialize>(&self, value: &T) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.root)?;
        crate::io::write_json(&self.config(), value)
    }
}

/// What a run folder holds, for a given configuration.
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

/// What `config.json` of a training run holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    /// The configuration.
    pub config: TrainConfig,
    /// The tweedie version that made the run.
    pub tweedie_version: String,
    /// Fingerprint of the source's pool and test set.
    pub data_fingerprint: String,
    /// Fingerprint of the training images.
    pub train_fingerprint: String,
    /// Number of training images.
    pub train_images: usize,
    /// Image shape (C, H, W).
    pub image_shape: [usize; 3],
    /// Trainable parameters.
    pub num_params: usize,
}

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MetricsLine {
    /// Steps done.
    pub step: u64,
    /// Mean training loss since the previous line.
    pub loss: f64,
    /// Learning rate of the last step.
    pub lr: f64,
    /// Validation at each σ.
    pub validation: Vec<DenoisingRow>,
    /// Throughput since the previous line.
    pub images_per_second: f64,
    /// Something that happened instead of training (a rollback after a non-finite loss).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
}

/// What `tweedie eval` writes to `eval.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalRecord {
    /// Rows on the training images.
    pub train: Vec<DenoisingRow>,
    /// Rows on held-out images.
    pub test: Vec<DenoisingRow>,
    /// The exact MMSE denoiser on the same held-out noisy images, when the data's family has
    /// one (Gaussian fields: the Wiener filter).
    #[serde(default)]
    pub optimum: Option<Vec<DenoisingRow>>,
    /// The blind optimum on the same images: the MMSE denoiser for σ unknown, drawn from the
    /// prior this run was trained on (its σ draws times its loss weights). No blind denoiser
    /// does better on average over that prior (at one σ it may, by doing worse at others).
    #[serde(default)]
    pub blind_optimum: Option<Vec<DenoisingRow>>,
    /// The homogeneous blind optimum on the same images: as `blind_optimum` with the field's
    /// scale unknown too — the best denoiser with f(a·y) = a·f(y), a bias-free network's bound.
    #[serde(default)]
    pub homogeneous_optimum: Option<Vec<DenoisingRow>>,
    /// How many images of each were used.
    pub images: usize,
    /// Noise seed.
    pub seed: u64,
}

/// `metrics.jsonl` as text; empty before the first line is logged.
fn metrics_text(run: &RunDir) -> std::io::Result<String> {
    match std::fs::read_to_string(run.metrics()) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        other => other,
    }
}

/// Drops the lines of `metrics.jsonl` past `step` (and a torn last line): what a run killed after
/// its last checkpoint logged is logged again when it resumes from that checkpoint, and must not
/// appear twice. Rewritten atomically, and only when something is dropped.
pub fn truncate_metrics(run: &RunDir, step: u64) -> std::io::Result<()> {
    let text = metrics_text(run)?;
    let kept: String = text
        .lines()
        .filter(|l| serde_json::from_str::<MetricsLine>(l).is_ok_and(|m| m.step <= step))
        .flat_map(|l| [l, "\n"])
        .collect();
    if kept != text {
        crate::io::write_atomic(&run.metrics(), kept.as_bytes())?;
    }
    Ok(())
}

/// Reads `metrics.jsonl`, skipping a torn last line (a crash mid-append).
pub fn read_metrics(run: &RunDir) -> std::io::Result<Vec<MetricsLine>> {
    Ok(metrics_text(run)?
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(step: u64) -> MetricsLine {
        MetricsLine {
            step,
            loss: 1.0,
            lr: 1e-3,
            validation: Vec::new(),
            images_per_second: 1.0,
            event: None,
        }
    }

    #[test]
    fn truncating_metrics_drops_what_follows_the_checkpoint_and_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        truncate_metrics(&run, 5).unwrap(); // no file yet: nothing to do
        assert!(!run.metrics().exists());
        for step in [10, 20, 30] {
            crate::io::append_json_line(&run.metrics(), &line(step)).unwrap();
        }
        let mut text = std::fs::read_to_string(run.metrics()).unwrap();
        text.push_str("{\"step\": 4"); // torn by a kill mid-append
        std::fs::write(run.metrics(), &text).unwrap();
        truncate_metrics(&run, 20).unwrap();
        let steps: Vec<u64> = read_metrics(&run).unwrap().iter().map(|m| m.step).collect();
        assert_eq!(steps, [10, 20]);
        let text = std::fs::read_to_string(run.metrics()).unwrap();
        assert!(text.ends_with("}\n") && text.lines().count() == 2, "{text}");
    }
}
