//! One folder type for every experiment ([`ExperimentDir`]): where its configuration and record
//! live, the writer's lock, and whether a command continues what the folder holds or refuses to
//! overwrite it. Each experiment names its files once, in its [`Experiment`] impl; the paths of
//! its own parts (a study's runs and samples, an optimality study's arms) are inherent methods
//! on its `ExperimentDir<E>`, so the compiler keeps a study's paths off an optimality folder.
//!
//! The shape every experiment has (DESIGN.md): a validated `Config` → [`Run::run`] with an
//! [`ExperimentDir`] and a [`Context`] → a `Record`, from which `report` draws the pages.

use crate::lock::{FolderLock, LockError};
use crate::progress::Progress;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// What an experiment's folder holds.
pub trait Experiment {
    /// What the folder holds, in messages ("generalization study").
    const NAME: &'static str;
    /// The record, the JSON the pages are drawn from (`study.json`).
    const RECORD_FILE: &'static str;
    /// The resolved configuration.
    type Config: Serialize + DeserializeOwned;
    /// What a finished experiment measured.
    type Record: Serialize + DeserializeOwned;
}

/// An experiment that keeps its configuration in a file of its own, written before any work, so
/// that an interrupted one continues with exactly the settings it started with.
pub trait Configured: Experiment<Config: PartialEq> {
    /// The configuration's file (`study_config.json`).
    const CONFIG_FILE: &'static str;
}

/// An experiment that runs from its configuration alone.
pub trait Run: Experiment + Sized {
    /// Its errors.
    type Error: std::error::Error;
    /// Runs (or continues) the experiment in `dir` and writes its record there.
    fn run(
        cfg: &Self::Config,
        dir: &ExperimentDir<Self>,
        ctx: &Context<'_>,
    ) -> Result<Self::Record, Self::Error>;
}

/// What an experiment runs with besides its configuration: the machine's side.
pub struct Context<'a> {
    /// Where tensors live.
    pub device: burn::tensor::Device,
    /// Where long work reports.
    pub progress: &'a (dyn Progress + Sync),
    /// Trainings run at once (`None`: the experiment's measured default).
    pub jobs: Option<usize>,
}

/// Errors of an experiment's folder.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    /// Continuing a folder that holds no experiment of the kind.
    #[error("{folder} holds no {name} yet: start one there instead of resuming")]
    NotStarted {
        /// The folder.
        folder: PathBuf,
        /// The experiment's name.
        name: &'static str,
    },
    /// Starting an experiment in a folder that holds another.
    #[error("{folder} holds a {name} with other settings; resume it or choose another folder")]
    Other {
        /// The folder.
        folder: PathBuf,
        /// The experiment's name.
        name: &'static str,
    },
    /// Reading or writing one of its files.
    #[error("{path}: {}{}", crate::io::one_line(&source.to_string()), crate::io::advice(source))]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Another process writes to the folder.
    #[error(transparent)]
    Locked(#[from] LockError),
}

/// The folder of an experiment of kind `E`.
pub struct ExperimentDir<E> {
    root: PathBuf,
    kind: PhantomData<fn() -> E>,
}

impl<E> Clone for ExperimentDir<E> {
    fn clone(&self) -> Self {
        Self::new(self.root.clone())
    }
}

impl<E> std::fmt::Debug for ExperimentDir<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ExperimentDir").field(&self.root).finish()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FolderError + '_ {
    move |source| FolderError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl<E> ExperimentDir<E> {
    /// The folder at `root` (nothing is created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            kind: PhantomData,
        }
    }
    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `figures/`.
    pub fn figures(&self) -> PathBuf {
        self.root.join("figures")
    }
    /// Creates the folder and takes its writer's lock, held until the guard drops: two
    /// processes never write one experiment.
    pub fn lock(&self) -> Result<FolderLock, FolderError> {
        std::fs::create_dir_all(&self.root).map_err(io(&self.root))?;
        Ok(FolderLock::acquire(&self.root)?)
    }
}

impl<E: Experiment> ExperimentDir<E> {
    /// The record's file.
    pub fn record(&self) -> PathBuf {
        self.root.join(E::RECORD_FILE)
    }
    /// Reads the record.
    pub fn read_record(&self) -> Result<E::Record, FolderError> {
        crate::io::read_json(&self.record()).map_err(io(&self.record()))
    }
    /// Writes the record atomically, creating the folder.
    pub fn write_record(&self, record: &E::Record) -> Result<(), FolderError> {
        std::fs::create_dir_all(&self.root).map_err(io(&self.root))?;
        crate::io::write_json(&self.record(), record).map_err(io(&self.record()))
    }
}

impl<E: Configured> ExperimentDir<E> {
    /// The configuration's file.
    pub fn config(&self) -> PathBuf {
        self.root.join(E::CONFIG_FILE)
    }
    /// Reads the configuration.
    pub fn read_config(&self) -> Result<E::Config, FolderError> {
        crate::io::read_json(&self.config()).map_err(io(&self.config()))
    }
    /// Writes the configuration atomically, creating the folder.
    pub fn write_config(&self, cfg: &E::Config) -> Result<(), FolderError> {
        std::fs::create_dir_all(&self.root).map_err(io(&self.root))?;
        crate::io::write_json(&self.config(), cfg).map_err(io(&self.config()))
    }

    /// The configuration the folder's experiment started with, to continue it (an error when
    /// the folder holds none).
    pub fn resume(&self) -> Result<E::Config, FolderError> {
        if !self.config().is_file() {
            return Err(FolderError::NotStarted {
                folder: self.root.clone(),
                name: E::NAME,
            });
        }
        self.read_config()
    }

    /// `fresh`, to start, unless the folder holds an experiment with other settings (the same
    /// settings continue it: running a command twice is not an error).
    pub fn start(&self, fresh: E::Config) -> Result<E::Config, FolderError> {
        if self.config().is_file() && self.read_config()? != fresh {
            return Err(FolderError::Other {
                folder: self.root.clone(),
                name: E::NAME,
            });
        }
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Toy;
    impl Experiment for Toy {
        const NAME: &'static str = "toy study";
        const RECORD_FILE: &'static str = "toy.json";
        type Config = Vec<u32>;
        type Record = String;
    }
    impl Configured for Toy {
        const CONFIG_FILE: &'static str = "toy_config.json";
    }

    /// A fresh folder starts; resuming needs a configuration there; the same settings continue
    /// it, other settings are refused, and resuming reads the folder's own.
    #[test]
    fn start_and_resume() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ExperimentDir::<Toy>::new(tmp.path().join("toy"));
        let err = dir.resume().unwrap_err();
        assert!(matches!(err, FolderError::NotStarted { .. }), "{err}");
        assert!(err.to_string().contains("holds no toy study yet"), "{err}");
        assert_eq!(dir.start(vec![1]).unwrap(), vec![1]);
        dir.write_config(&vec![1]).unwrap();
        assert_eq!(dir.start(vec![1]).unwrap(), vec![1]);
        let err = dir.start(vec![2]).unwrap_err();
        assert!(matches!(err, FolderError::Other { .. }), "{err}");
        assert_eq!(dir.resume().unwrap(), vec![1]);
    }

    /// The record round-trips; a corrupt one is an error naming its file; a second writer is
    /// refused while the first holds the lock.
    #[test]
    fn records_and_the_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ExperimentDir::<Toy>::new(tmp.path().join("toy"));
        assert!(dir.read_record().is_err(), "no record yet");
        dir.write_record(&"done".to_string()).unwrap();
        assert_eq!(dir.read_record().unwrap(), "done");
        std::fs::write(dir.record(), "{").unwrap();
        let err = dir.read_record().unwrap_err().to_string();
        assert!(err.contains("toy.json") && !err.contains('\n'), "{err}");
        let _held = dir.lock().unwrap();
        assert!(matches!(dir.lock(), Err(FolderError::Locked(_))));
    }
}
