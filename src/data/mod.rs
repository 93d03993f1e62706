//! Image data on the host: where it comes from (folders, IDX, `.npy`, synthetic families),
//! how it is split into the disjoint training sets of the paper, and how it reaches the network.
//!
//! Everything is `f32`, NCHW, pixel values nominally in [0, 1] (DESIGN.md). Data lives on the
//! host as [`Images`] and becomes a tensor only at the edge ([`Images::to_tensor`]), so loaders,
//! splits and synthetic generators are plain, testable Rust.

mod folder;
pub mod gaussian;
mod idx;
mod npy;
mod source;
pub mod split;
pub mod synthetic;

pub use folder::{image_files, is_image_file, load_folder, load_image, FolderOptions};
pub use idx::{load_idx, write_idx};
pub use npy::{load_npy, write_npy};
pub use source::{default_test_size, DataSource, Dataset};
pub use split::{Split, SplitSpec};

use burn::tensor::{Device, Tensor, TensorData};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// Everything that can go wrong while reading or preparing data. Each variant names the input
/// and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The content of a file is not what its format promises.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The offending file.
        path: PathBuf,
        /// What is wrong and, where possible, what would fix it.
        reason: String,
    },
    /// A folder or array holds no images at all.
    #[error("{path}: no images found ({hint})")]
    Empty {
        /// The folder or file.
        path: PathBuf,
        /// What the loader looked for.
        hint: String,
    },
    /// Images of different shapes cannot share one batch.
    #[error("{path}: image is {got:?} (C, H, W) but earlier images are {expected:?}; pass --size to resize them all")]
    ShapeMismatch {
        /// The first image that did not match.
        path: PathBuf,
        /// Shape of the earlier images.
        expected: [usize; 3],
        /// Shape of this one.
        got: [usize; 3],
    },
    /// A requested split does not fit in the data.
    #[error("{what}: {reason}")]
    Split {
        /// Which split.
        what: String,
        /// Why it cannot be made.
        reason: String,
    },
    /// The name of a data source could not be understood.
    #[error("unknown data source `{0}`: give `fashion-mnist`, `mnist`, an image folder, an IDX file (*-idx3-ubyte[.gz]) or a .npy file")]
    UnknownSource(String),
    /// A named dataset package is not installed.
    #[error("{name} not found in {dir}: install it with `sudo apt-get install {package}` (or pass the IDX files' folder explicitly)")]
    MissingPackage {
        /// The dataset's name.
        name: String,
        /// Where it was looked for.
        dir: PathBuf,
        /// The Debian package that provides it.
        package: String,
    },
    /// Non-finite pixel values.
    #[error("{path}: contains NaN or infinite values at image {index}; clean the array first")]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The first offending image.
        index: usize,
    },
    /// A parameter of a synthetic family is out of range.
    #[error("invalid data setting")]
    Invalid(#[from] crate::config::InvalidField),
}

/// A batch of images on the host: `f32`, NCHW, row-major.
///
/// # Shapes
/// `data.len() == n * c * h * w`; image `i` occupies `data[i*c*h*w .. (i+1)*c*h*w]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Images {
    data: Vec<f32>,
    shape: [usize; 4],
}

impl Images {
    /// Wraps `data` as an `[n, c, h, w]` batch.
    ///
    /// # Panics
    /// When the length does not match the shape: that is a bug in the caller, not bad input.
    pub fn new(data: Vec<f32>, shape: [usize; 4]) -> Self {
        assert_eq!(
            data.len(),
            shape.iter().product::<usize>(),
            "Images::new: data length does not match shape {shape:?}"
        );
        Self { data, shape }
    }

    /// An all-zero batch.
    pub fn zeros(shape: [usize; 4]) -> Self {
        Self::new(vec![0.0; shape.iter().product()], shape)
    }

    /// A batch of independent standard normal values drawn from `rng` (probes, benchmarks):
    /// the caller passes the stream, so the values follow from its seed.
    pub fn standard_normal(shape: [usize; 4], rng: &mut impl rand::Rng) -> Self {
        use rand_distr::{Distribution, StandardNormal};
        let n = shape.iter().product();
        Self::new((0..n).map(|_| StandardNormal.sample(rng)).collect(), shape)
    }

    /// `[n, c, h, w]`.
    pub fn shape(&self) -> [usize; 4] {
        self.shape
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    /// Whether the batch holds no image.
    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }

    /// Shape of one image, `[c, h, w]`.
    pub fn image_shape(&self) -> [usize; 3] {
        [self.shape[1], self.shape[2], self.shape[3]]
    }

    /// Number of values in one image, D = C·H·W.
    pub fn dim(&self) -> usize {
        self.shape[1] * self.shape[2] * self.shape[3]
    }

    /// All values, image after image.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// All values, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Consumes the batch, returning its values.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// The values of image `i`.
    pub fn image(&self, i: usize) -> &[f32] {
        let d = self.dim();
        &self.data[i * d..(i + 1) * d]
    }

    /// A new batch with the images at `indices`, in that order (repeats allowed).
    pub fn select(&self, indices: &[usize]) -> Images {
        let d = self.dim();
        let mut data = Vec::with_capacity(indices.len() * d);
        for &i in indices {
            data.extend_from_slice(self.image(i));
        }
        let [_, c, h, w] = self.shape;
        Images::new(data, [indices.len(), c, h, w])
    }

    /// The first `n` images (all of them if there are fewer).
    pub fn take(&self, n: usize) -> Images {
        let n = n.min(self.len());
        self.select(&(0..n).collect::<Vec<_>>())
    }

    /// Every image with its pixels rearranged: pixel `perm[i]` of the original (per channel)
    /// becomes pixel `i`. The per-pixel statistics stay, the geometry goes.
    ///
    /// # Panics
    /// When `perm` is not as long as an image has pixels (a caller bug).
    pub fn permute_pixels(&self, perm: &[usize]) -> Images {
        let [_, _, h, w] = self.shape;
        assert_eq!(perm.len(), h * w, "a pixel permutation of {h}×{w} images");
        let data = self
            .data
            .chunks_exact(h * w)
            .flat_map(|plane| perm.iter().map(|&p| plane[p]))
            .collect();
        Images::new(data, self.shape)
    }

    /// Concatenates batches of the same image shape.
    ///
    /// # Panics
    /// When the image shapes differ (a caller bug).
    pub fn concat(parts: &[Images]) -> Images {
        let first = parts.first().expect("Images::concat of nothing");
        let [_, c, h, w] = first.shape;
        let mut data = Vec::new();
        let mut n = 0;
        for p in parts {
            assert_eq!(p.image_shape(), [c, h, w], "Images::concat: shapes differ");
            data.extend_from_slice(&p.data);
            n += p.len();
        }
        Images::new(data, [n, c, h, w])
    }

    /// A SHA-256 of the shape and values: the data fingerprint recorded in run metadata.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        for s in self.shape {
            hasher.update((s as u64).to_le_bytes());
        }
        for v in &self.data {
            hasher.update(v.to_le_bytes());
        }
        hex(&hasher.finalize()[..16])
    }

    /// Moves the batch to `device` as a `[n, c, h, w]` tensor.
    pub fn to_tensor(&self, device: &Device) -> Tensor<4> {
        Tensor::from_data(TensorData::new(self.data.clone(), self.shape), device)
    }

    /// Reads a `[n, c, h, w]` tensor back to the host; a failure of the device panics, as
    /// burn's own reads do.
    pub fn from_tensor(t: Tensor<4>) -> Images {
        Self::try_from_tensor(t).unwrap_or_else(|e| panic!("reading a tensor back failed: {e}"))
    }

    /// Reads a `[n, c, h, w]` tensor back to the host, passing on what the device reports (a GPU
    /// reports a refused allocation at the read; see [`crate::device::within_memory`]).
    pub fn try_from_tensor(t: Tensor<4>) -> Result<Images, impl std::fmt::Display> {
        let dims = t.dims();
        t.try_into_data().map(|d| {
            let values = d.convert::<f32>().try_to_vec::<f32>();
            Images::new(values.expect("f32 tensor data"), dims)
        })
    }

    /// Index of the first image holding a NaN or infinity, if any.
    pub fn first_non_finite(&self) -> Option<usize> {
        let d = self.dim().max(1);
        self.data.iter().position(|v| !v.is_finite()).map(|p| p / d)
    }
}

/// Lower-case hex of a byte string.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_and_concat_keep_images_intact() {
        let imgs = Images::new((0..12).map(|v| v as f32).collect(), [3, 1, 2, 2]);
        let sel = imgs.select(&[2, 0]);
        assert_eq!(sel.image(0), &[8.0, 9.0, 10.0, 11.0]);
        assert_eq!(sel.image(1), &[0.0, 1.0, 2.0, 3.0]);
        let both = Images::concat(&[sel.clone(), imgs.take(1)]);
        assert_eq!(both.len(), 3);
        assert_eq!(both.image(2), imgs.image(0));
    }

    #[test]
    fn fingerprint_depends_on_values_and_shape() {
        let a = Images::new(vec![0.0, 1.0, 2.0, 3.0], [1, 1, 2, 2]);
        let b = Images::new(vec![0.0, 1.0, 2.0, 3.0], [1, 1, 1, 4]);
        let mut c = a.clone();
        c.as_mut_slice()[3] = 3.5;
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
    }
}
