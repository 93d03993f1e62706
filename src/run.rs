//! A run is a folder and a complete record (DESIGN.md): `config.json` (the resolved
//! configuration, seed, crate version, data fingerprints) written before work starts,
//! `metrics.jsonl`, `checkpoint.safetensors`, `model.safetensors`, `figures/`, `report.html`.
//! Every command that consumes a model takes the run folder.

use serde::{de::DeserializeOwned, Serialize};
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
    /// `figures/`.
    pub fn figures(&self) -> PathBuf {
        self.root.join("figures")
    }
    /// A file directly in the folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Reads and parses `config.json`.
    pub fn read_config<T: DeserializeOwned>(&self) -> std::io::Result<T> {
        let text = std::fs::read_to_string(self.config())?;
        serde_json::from_str(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", self.config().display()),
            )
        })
    }

    /// Writes `config.json` atomically, creating the folder.
    pub fn write_config<T: Serialize>(&self, value: &T) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.root)?;
        crate::io::write_json(&self.config(), value)
    }
}
