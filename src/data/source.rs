//! Named data sources and the train/test pair they resolve to.
//!
//! A source is written as one string on the command line and in `config.json`:
//! `fashion-mnist` (the Debian package `dataset-fashion-mnist`), a folder of IDX files
//! (`train-images-idx3-ubyte[.gz]` and optionally `t10k-images-idx3-ubyte[.gz]`), one IDX file,
//! a `.npy` array, or a folder of image files.

use super::{folder, idx, npy, DataError, FolderOptions, Images};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

/// Where the Debian package `dataset-fashion-mnist` installs its files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// Environment variable that overrides [`FASHION_MNIST_DIR`].
pub const FASHION_MNIST_ENV: &str = "TWEEDIE_FASHION_MNIST_DIR";

/// A data source, resolved from its command-line spelling by [`DataSource::parse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSource {
    /// Fashion-MNIST from the Debian package (train: 60 000, test: 10 000 images of 28×28).
    FashionMnist,
    /// A folder holding `train-images-idx3-ubyte[.gz]` and maybe `t10k-images-idx3-ubyte[.gz]`.
    IdxDir(PathBuf),
    /// A single IDX image file.
    IdxFile(PathBuf),
    /// A `.npy` array (N, H, W) or (N, C, H, W).
    Npy(PathBuf),
    /// A folder of image files.
    Folder(PathBuf, FolderOptions),
}

/// The images a source provides: a pool the training splits are drawn from, and a test set that
/// no training split ever touches.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Images the disjoint training splits are drawn from.
    pub pool: Images,
    /// Held-out images (the source's own test file, or a seeded hold-out from the pool).
    pub test: Images,
    /// Fingerprints of pool and test, `pool:test`.
    pub fingerprint: String,
}

impl DataSource {
    /// Resolves a command-line spelling. Folder options apply to image folders only.
    pub fn parse(spec: &str, folder_opts: FolderOptions) -> Result<Self, DataError> {
        if spec.eq_ignore_ascii_case("fashion-mnist") || spec.eq_ignore_ascii_case("fashion_mnist")
        {
            return Ok(Self::FashionMnist);
        }
        let path = PathBuf::from(spec);
        if path.is_dir() {
            return Ok(if find_idx(&path, "train").is_some() {
                Self::IdxDir(path)
            } else {
                Self::Folder(path, folder_opts)
            });
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if name.ends_with(".npy") {
            return Ok(Self::Npy(path));
        }
        if name.contains("idx3") {
            return Ok(Self::IdxFile(path));
        }
        if !path.exists() {
            return Err(DataError::Io {
                path,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
            });
        }
        Err(DataError::UnknownSource(spec.to_string()))
    }

    /// The spelling that [`DataSource::parse`] turns back into this source.
    pub fn spec(&self) -> String {
        match self {
            Self::FashionMnist => "fashion-mnist".into(),
            Self::IdxDir(p) | Self::IdxFile(p) | Self::Npy(p) | Self::Folder(p, _) => {
                p.display().to_string()
            }
        }
    }

    /// Loads pool and test set. Sources without a test file hold out `test_size` images
    /// (default: a tenth, at most 1000) chosen by a permutation seeded with `split_seed`.
    pub fn load(&self, test_size: Option<usize>, split_seed: u64) -> Result<Dataset, DataError> {
        let (pool, test) = match self {
            Self::FashionMnist => {
                let dir = std::env::var_os(FASHION_MNIST_ENV)
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(FASHION_MNIST_DIR));
                if find_idx(&dir, "train").is_none() {
                    return Err(DataError::MissingPackage {
                        name: "Fashion-MNIST".into(),
                        dir,
                        package: "dataset-fashion-mnist".into(),
                    });
                }
                load_idx_dir(&dir)?
            }
            Self::IdxDir(dir) => load_idx_dir(dir)?,
            Self::IdxFile(p) => (idx::load_idx(p)?, None),
            Self::Npy(p) => (npy::load_npy(p)?, None),
            Self::Folder(p, opts) => (folder::load_folder(p, *opts)?, None),
        };
        let (pool, test) = match test {
            Some(t) => (pool, t),
            None => {
                let t = test_size.unwrap_or_else(|| default_test_size(pool.len()));
                hold_out(pool, t, split_seed, &self.spec())?
            }
        };
        let fingerprint = format!("{}:{}", pool.fingerprint(), test.fingerprint());
        Ok(Dataset {
            pool,
            test,
            fingerprint,
        })
    }
}

/// Finds `{prefix}-images-idx3-ubyte` or its `.gz` in `dir`.
fn find_idx(dir: &Path, prefix: &str) -> Option<PathBuf> {
    [".gz", ""]
        .iter()
        .map(|ext| dir.join(format!("{prefix}-images-idx3-ubyte{ext}")))
        .find(|p| p.is_file())
}

fn load_idx_dir(dir: &Path) -> Result<(Images, Option<Images>), DataError> {
    let train = find_idx(dir, "train").ok_or_else(|| DataError::Empty {
        path: dir.to_path_buf(),
        hint: "expected train-images-idx3-ubyte[.gz]".into(),
    })?;
    let pool = idx::load_idx(&train)?;
    let test = find_idx(dir, "t10k")
        .map(|p| idx::load_idx(&p))
        .transpose()?;
    if let Some(t) = &test {
        if t.image_shape() != pool.image_shape() {
            return Err(DataError::ShapeMismatch {
                path: dir.join("t10k-images-idx3-ubyte"),
                expected: pool.image_shape(),
                got: t.image_shape(),
            });
        }
    }
    Ok((pool, test))
}

/// Splits `images` into (pool, test) with a seeded permutation; the test set is the last
/// `test_size` images of the permutation, so it never depends on how the pool is used.
fn hold_out(
    images: Images,
    test_size: usize,
    seed: u64,
    what: &str,
) -> Result<(Images, Images), DataError> {
    let n = images.len();
    if test_size == 0 || test_size >= n {
        return Err(DataError::Split {
            what: format!("test hold-out of {what}"),
            reason: format!(
                "cannot hold out {test_size} of {n} images; pass --test-size between 1 and {}",
                n.saturating_sub(1)
            ),
        });
    }
    let mut perm: Vec<usize> = (0..n).collect();
    perm.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x7e57_7e57));
    let (pool_idx, test_idx) = perm.split_at(n - test_size);
    let mut pool_idx = pool_idx.to_vec();
    let mut test_idx = test_idx.to_vec();
    pool_idx.sort_unstable();
    test_idx.sort_unstable();
    Ok((images.select(&pool_idx), images.select(&test_idx)))
}

/// The default hold-out size for sources without a test file: a tenth, at most 1000.
pub fn default_test_size(n: usize) -> usize {
    (n / 10).clamp(1, 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_out_is_disjoint_and_seeded() {
        let imgs = Images::new((0..20).map(|v| v as f32).collect(), [20, 1, 1, 1]);
        let (p1, t1) = hold_out(imgs.clone(), 5, 3, "x").unwrap();
        let (p2, t2) = hold_out(imgs.clone(), 5, 3, "x").unwrap();
        assert_eq!((p1.len(), t1.len()), (15, 5));
        assert_eq!(t1, t2);
        assert_eq!(p1, p2);
        for v in t1.as_slice() {
            assert!(!p1.as_slice().contains(v));
        }
        assert!(hold_out(imgs, 20, 3, "x").is_err());
    }

    #[test]
    fn missing_fashion_mnist_names_the_package() {
        let dir = tempfile::tempdir().unwrap();
        // Safe here: no other test reads this variable.
        std::env::set_var(FASHION_MNIST_ENV, dir.path());
        let err = DataSource::FashionMnist
            .load(None, 0)
            .unwrap_err()
            .to_string();
        std::env::remove_var(FASHION_MNIST_ENV);
        assert!(err.contains("dataset-fashion-mnist"), "{err}");
    }

    #[test]
    fn parse_recognises_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let npy = dir.path().join("x.npy");
        std::fs::write(&npy, b"").unwrap();
        assert_eq!(
            DataSource::parse(npy.to_str().unwrap(), FolderOptions::default()).unwrap(),
            DataSource::Npy(npy)
        );
        assert!(matches!(
            DataSource::parse(dir.path().to_str().unwrap(), FolderOptions::default()).unwrap(),
            DataSource::Folder(..)
        ));
        assert_eq!(
            DataSource::parse("fashion-mnist", FolderOptions::default()).unwrap(),
            DataSource::FashionMnist
        );
        assert!(DataSource::parse("/no/such/thing.png", FolderOptions::default()).is_err());
    }
}
