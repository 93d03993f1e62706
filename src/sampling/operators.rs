//! Linear measurement operators for inverse problems, all with orthonormal rows so that the
//! constrained ascent of Kadkhodaie & Simoncelli (2021, Algorithm 2) applies directly:
//! with M: ℝᴰ → ℝᵐ and M Mᵀ = I, the measured part of an image is Mᵀ M x and the free part
//! (I − Mᵀ M) x.
//!
//! - [`Mask`]: keep a subset of pixels (inpainting a box or an arbitrary mask, random missing
//!   pixels);
//! - [`BlockAverage`]: super-resolution by averaging f×f blocks (rows scaled by 1/f to be
//!   orthonormal);
//! - [`RandomProjection`]: compressive sensing with random orthonormal projections;
//! - [`LowPass`]: deblurring / spectral super-resolution: keep the Fourier coefficients of a
//!   low-frequency band (real orthonormal cosine/sine basis).

use crate::config::{check, InvalidField};
use crate::fourier;
use crate::rng::{stream, Purpose};
use rand::seq::SliceRandom;
use rand_distr::{Distribution, StandardNormal};

/// A linear measurement with orthonormal rows, acting on one image of `dim()` values.
pub trait Measurement {
    /// Number of values of an image, D.
    fn dim(&self) -> usize;
    /// Number of measured values, m.
    fn measurements(&self) -> usize;
    /// c = M x.
    fn measure(&self, x: &[f32]) -> Vec<f32>;
    /// Mᵀ c: the measurement placed back in image space.
    fn adjoint(&self, c: &[f32]) -> Vec<f32>;
    /// Mᵀ M x: projection onto the measured subspace.
    fn project(&self, x: &[f32]) -> Vec<f32> {
        self.adjoint(&self.measure(x))
    }
    /// A short description for reports.
    fn describe(&self) -> String;
}

/// Keeps the pixels where `keep` is true (all channels of a pixel alike).
#[derive(Clone, Debug)]
pub struct Mask {
    keep: Vec<bool>,
    idx: Vec<usize>,
    what: String,
}

impl Mask {
    /// From a per-value mask of length D.
    pub fn new(keep: Vec<bool>, what: impl Into<String>) -> Self {
        let idx = keep
            .iter()
            .enumerate()
            .filter_map(|(i, &k)| k.then_some(i))
            .collect();
        Self {
            keep,
            idx,
            what: what.into(),
        }
    }

    /// Everything but a box of `bh × bw` pixels at (`top`, `left`) is measured: inpainting.
    pub fn box_hole(shape: [usize; 3], top: usize, left: usize, bh: usize, bw: usize) -> Self {
        let [c, h, w] = shape;
        let keep = (0..c * h * w)
            .map(|i| {
                let (y, x) = ((i % (h * w)) / w, i % w);
                !(y >= top && y < top + bh && x >= left && x < left + bw)
            })
            .collect();
        Self::new(
            keep,
            format!("inpainting a {bh}×{bw} box at ({top}, {left})"),
        )
    }

    /// A random `fraction` of pixels is missing; which ones comes from `seed`.
    pub fn random_pixels(
        shape: [usize; 3],
        fraction: f64,
        seed: u64,
    ) -> Result<Self, InvalidField> {
        check(
            (0.0..1.0).contains(&fraction),
            "fraction",
            fraction,
            "must be in [0, 1)",
        )?;
        let [c, h, w] = shape;
        let mut pixels: Vec<usize> = (0..h * w).collect();
        pixels.shuffle(&mut stream(seed, Purpose::Probe, 1));
        let missing = ((fraction * (h * w) as f64).round() as usize).min(h * w);
        let mut keep_px = vec![true; h * w];
        for &p in &pixels[..missing] {
            keep_px[p] = false;
        }
        let keep = (0..c * h * w).map(|i| keep_px[i % (h * w)]).collect();
        Ok(Self::new(
            keep,
            format!("{:.0}% random missing pixels", fraction * 100.0),
        ))
    }

    /// Which values are measured.
    pub fn keep(&self) -> &[bool] {
        &self.keep
    }
}

impl Measurement for Mask {
    fn dim(&self) -> usize {
        self.keep.len()
    }
    fn measurements(&self) -> usize {
        self.idx.len()
    }
    fn measure(&self, x: &[f32]) -> Vec<f32> {
        self.idx.iter().map(|&i| x[i]).collect()
    }
    fn adjoint(&self, c: &[f32]) -> Vec<f32> {
        let mut x = vec![0.0; self.keep.len()];
        for (&i, &v) in self.idx.iter().zip(c) {
            x[i] = v;
        }
        x
    }
    fn project(&self, x: &[f32]) -> Vec<f32> {
        x.iter()
            .zip(&self.keep)
            .map(|(&v, &k)| if k { v } else { 0.0 })
            .collect()
    }
    fn describe(&self) -> String {
        self.what.clone()
    }
}

/// Averages of `factor × factor` blocks, scaled by `factor` so rows are orthonormal
/// (c = block sum / factor). Image sides must be multiples of `factor`.
#[derive(Clone, Debug)]
pub struct BlockAverage {
    shape: [usize; 3],
    factor: usize,
}

impl BlockAverage {
    /// Super-resolution by `factor` of `shape` images.
    pub fn new(shape: [usize; 3], factor: usize) -> Result<Self, InvalidField> {
        let [_, h, w] = shape;
        check(
            factor >= 2 && h % factor == 0 && w % factor == 0,
            "factor",
            factor,
            format!("must be ≥ 2 and divide the image size {h}×{w}"),
        )?;
        Ok(Self { shape, factor })
    }
}

impl Measurement for BlockAverage {
    fn dim(&self) -> usize {
        self.shape.iter().product()
    }
    fn measurements(&self) -> usize {
        self.dim() / (self.factor * self.factor)
    }
    fn measure(&self, x: &[f32]) -> Vec<f32> {
        let [c, h, w] = self.shape;
        let f = self.factor;
        let (lh, lw) = (h / f, w / f);
        let mut out = vec![0.0f32; c * lh * lw];
        for ch in 0..c {
            for y in 0..h {
                for xx in 0..w {
                    out[ch * lh * lw + (y / f) * lw + xx / f] += x[ch * h * w + y * w + xx];
                }
            }
        }
        out.iter_mut().for_each(|v| *v /= f as f32);
        out
    }
    fn adjoint(&self, m: &[f32]) -> Vec<f32> {
        let [c, h, w] = self.shape;
        let f = self.factor;
        let (lh, lw) = (h / f, w / f);
        let mut x = vec![0.0f32; c * h * w];
        for ch in 0..c {
            for y in 0..h {
                for xx in 0..w {
                    x[ch * h * w + y * w + xx] = m[ch * lh * lw + (y / f) * lw + xx / f] / f as f32;
                }
            }
        }
        x
    }
    fn describe(&self) -> String {
        format!("super-resolution ×{} (block averages)", self.factor)
    }
}

/// m random orthonormal projections (rows of a random orthogonal matrix, by Gram–Schmidt on
/// Gaussian vectors drawn from `seed`): compressive sensing. Dense, so for small images.
#[derive(Clone, Debug)]
pub struct RandomProjection {
    rows: Vec<Vec<f32>>,
    dim: usize,
}

impl RandomProjection {
    /// `fraction` of D measurements of D-value images.
    pub fn new(dim: usize, fraction: f64, seed: u64) -> Result<Self, InvalidField> {
        check(
            fraction > 0.0 && fraction <= 1.0,
            "fraction",
            fraction,
            "must be in (0, 1]",
        )?;
        check(
            dim <= 16384,
            "image",
            format!("{dim} values"),
            "compressive sensing stores a dense matrix: images must be at most 128×128",
        )?;
        let m = ((fraction * dim as f64).round() as usize).clamp(1, dim);
        let mut rng = stream(seed, Purpose::Probe, 2);
        let mut rows: Vec<Vec<f64>> = Vec::with_capacity(m);
        while rows.len() < m {
            let mut v: Vec<f64> = (0..dim).map(|_| StandardNormal.sample(&mut rng)).collect();
            for _ in 0..2 {
                // twice for numerical orthogonality
                for r in &rows {
                    let p: f64 = v.iter().zip(r).map(|(a, b)| a * b).sum();
                    v.iter_mut().zip(r).for_each(|(a, b)| *a -= p * b);
                }
            }
            let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            if n > 1e-6 {
                v.iter_mut().for_each(|a| *a /= n);
                rows.push(v);
            }
        }
        Ok(Self {
            rows: rows
                .into_iter()
                .map(|r| r.into_iter().map(|v| v as f32).collect())
                .collect(),
            dim,
        })
    }
}

impl Measurement for RandomProjection {
    fn dim(&self) -> usize {
        self.dim
    }
    fn measurements(&self) -> usize {
        self.rows.len()
    }
    fn measure(&self, x: &[f32]) -> Vec<f32> {
        self.rows
            .iter()
            .map(|r| r.iter().zip(x).map(|(a, b)| (a * b) as f64).sum::<f64>() as f32)
            .collect()
    }
    fn adjoint(&self, c: &[f32]) -> Vec<f32> {
        let mut x = vec![0.0f64; self.dim];
        for (r, &cv) in self.rows.iter().zip(c) {
            x.iter_mut().zip(r).for_each(|(a, b)| *a += (cv * b) as f64);
        }
        x.into_iter().map(|v| v as f32).collect()
    }
    fn describe(&self) -> String {
        format!(
            "compressive sensing: {} random orthonormal projections of {} values",
            self.rows.len(),
            self.dim
        )
    }
}

/// Keeps the Fourier coefficients with |f| ≤ `cutoff` cycles per image (per channel): an ideal
/// low-pass "blur". The measurement is represented by the band-limited image itself (D values
/// with as many degrees of freedom as kept coefficients): M = Mᵀ = P, the orthogonal projector
/// onto the band, so what the constrained sampler needs (Mᵀ M = P, M Mᵀ c = c for measured c)
/// holds.
#[derive(Clone, Debug)]
pub struct LowPass {
    shape: [usize; 3],
    gain: Vec<f64>,
    kept: usize,
    cutoff: f64,
}

impl LowPass {
    /// Keep |f| ≤ `cutoff` (in cycles per image) of `shape` images.
    pub fn new(shape: [usize; 3], cutoff: f64) -> Result<Self, InvalidField> {
        let [c, h, w] = shape;
        check(
            cutoff >= 0.0 && cutoff.is_finite(),
            "cutoff",
            cutoff,
            "must be ≥ 0",
        )?;
        let gain: Vec<f64> = (0..h * w)
            .map(|i| f64::from(u8::from(fourier::radial_freq(i / w, i % w, h, w) <= cutoff)))
            .collect();
        let kept = c * gain.iter().filter(|g| **g > 0.0).count();
        Ok(Self {
            shape,
            gain,
            kept,
            cutoff,
        })
    }
}

impl Measurement for LowPass {
    fn dim(&self) -> usize {
        self.shape.iter().product()
    }
    fn measurements(&self) -> usize {
        // The measurement is represented by the band-limited image (D values), whose degrees of
        // freedom are `kept`; see `describe`.
        self.dim()
    }
    fn measure(&self, x: &[f32]) -> Vec<f32> {
        let [c, h, w] = self.shape;
        (0..c)
            .flat_map(|ch| fourier::filter(&x[ch * h * w..(ch + 1) * h * w], h, w, &self.gain))
            .collect()
    }
    fn adjoint(&self, c: &[f32]) -> Vec<f32> {
        // the band projector is symmetric and idempotent: Mᵀ = M on this representation
        self.measure(c)
    }
    fn describe(&self) -> String {
        format!(
            "deblurring: Fourier coefficients with |f| ≤ {} cycles/image ({} of {} values)",
            self.cutoff,
            self.kept,
            self.dim()
        )
    }
}

/// An inverse problem by name and parameters, serializable for the records: what `tweedie
/// restore` and the Python package build their operator from.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "task", rename_all = "kebab-case")]
pub enum Task {
    /// Fill a missing box (pixels, from the top-left corner).
    InpaintBox {
        /// First missing row.
        top: usize,
        /// First missing column.
        left: usize,
        /// Missing rows.
        height: usize,
        /// Missing columns.
        width: usize,
    },
    /// Fill the pixels a mask marks missing (the same for every channel).
    InpaintMask {
        /// `[h · w]`, row-major, true where the pixel is known (not recorded: where it came
        /// from is, in `name`).
        #[serde(skip)]
        known: Vec<bool>,
        /// The mask's height and width.
        size: [usize; 2],
        /// Where the mask came from, for the records.
        name: String,
    },
    /// A random fraction of the pixels missing.
    RandomPixels {
        /// The fraction missing.
        fraction: f64,
    },
    /// Super-resolution from `factor` × `factor` block averages.
    Superres {
        /// The block side.
        factor: usize,
    },
    /// Compressive sensing: a fraction of D random orthonormal projections.
    Cs {
        /// The fraction measured.
        fraction: f64,
    },
    /// Deblurring: the Fourier coefficients up to `cutoff` cycles per image known.
    Deblur {
        /// The cutoff, cycles per image.
        cutoff: f64,
    },
}

impl Task {
    /// The operator on images of `shape`; random masks and projections drawn from `seed`.
    pub fn build(
        &self,
        shape: [usize; 3],
        seed: u64,
    ) -> Result<Box<dyn Measurement + Send + Sync>, InvalidField> {
        let [c, h, w] = shape;
        Ok(match self {
            &Task::InpaintBox {
                top,
                left,
                height,
                width,
            } => {
                check(
                    top + height <= h && left + width <= w && height > 0 && width > 0,
                    "mask_box",
                    format!("{top},{left},{height},{width}"),
                    format!("must fit in {h}×{w} images (top,left,height,width)"),
                )?;
                Box::new(Mask::box_hole(shape, top, left, height, width))
            }
            Task::InpaintMask { known, size, name } => {
                check(
                    *size == [h, w] && known.len() == h * w,
                    "mask",
                    format!("{name} ({}×{})", size[0], size[1]),
                    format!("must be {h}×{w}, as the images are"),
                )?;
                let keep = (0..c * h * w).map(|i| known[i % (h * w)]).collect();
                Box::new(Mask::new(keep, format!("inpainting with mask {name}")))
            }
            &Task::RandomPixels { fraction } => {
                Box::new(Mask::random_pixels(shape, fraction, seed)?)
            }
            &Task::Superres { factor } => Box::new(BlockAverage::new(shape, factor)?),
            &Task::Cs { fraction } => Box::new(RandomProjection::new(c * h * w, fraction, seed)?),
            &Task::Deblur { cutoff } => Box::new(LowPass::new(shape, cutoff)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = stream(seed, Purpose::Probe, 9);
        (0..n).map(|_| StandardNormal.sample(&mut rng)).collect()
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum()
    }

    fn operators() -> Vec<Box<dyn Measurement>> {
        let shape = [1, 8, 8];
        vec![
            Box::new(Mask::box_hole(shape, 2, 3, 3, 4)),
            Box::new(Mask::random_pixels([3, 8, 8], 0.5, 1).unwrap()),
            Box::new(BlockAverage::new(shape, 4).unwrap()),
            Box::new(BlockAverage::new([3, 8, 8], 2).unwrap()),
            Box::new(RandomProjection::new(64, 0.25, 2).unwrap()),
            Box::new(LowPass::new(shape, 2.0).unwrap()),
        ]
    }

    #[test]
    fn adjoint_is_the_transpose() {
        for op in operators() {
            let x = random(op.dim(), 1);
            let c = random(op.measurements(), 2);
            // for LowPass the measurement space is the band: compare on band-limited c
            let c = if op.measurements() == op.dim() {
                op.project(&c)
            } else {
                c
            };
            let lhs = dot(&op.measure(&x), &c);
            let rhs = dot(&x, &op.adjoint(&c));
            let scale = (dot(&x, &x) * dot(&c, &c)).sqrt();
            assert!(
                (lhs - rhs).abs() < 1e-5 * scale,
                "{}: {lhs} vs {rhs}",
                op.describe()
            );
        }
    }

    #[test]
    fn rows_are_orthonormal_so_projection_is_idempotent() {
        for op in operators() {
            let x = random(op.dim(), 3);
            let p = op.project(&x);
            let pp = op.project(&p);
            let err: f64 = p
                .iter()
                .zip(&pp)
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum();
            assert!(
                err.sqrt() < 1e-4 * dot(&p, &p).sqrt().max(1e-9),
                "{}",
                op.describe()
            );
            // M Mᵀ c = c for a measurement c = M x
            let c = op.measure(&x);
            let back = op.measure(&op.adjoint(&c));
            let e: f64 = c
                .iter()
                .zip(&back)
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum();
            assert!(
                e.sqrt() < 1e-4 * dot(&c, &c).sqrt().max(1e-9),
                "{}",
                op.describe()
            );
        }
    }

    #[test]
    fn bad_parameters_are_errors() {
        assert!(BlockAverage::new([1, 10, 10], 4).is_err());
        assert!(RandomProjection::new(16, 0.0, 0).is_err());
        assert!(LowPass::new([1, 4, 4], -1.0).is_err());
    }

    /// Every task builds its operator at the image's size, with M Mᵀ = I on measurements; a box or a mask that
    /// does not fit is refused by field; the record keeps the task's name and parameters.
    #[test]
    fn tasks_build_their_operators_and_refuse_what_does_not_fit() {
        let shape = [1, 8, 8];
        let tasks = [
            Task::InpaintBox {
                top: 2,
                left: 2,
                height: 3,
                width: 3,
            },
            Task::InpaintMask {
                known: (0..64).map(|i| i % 3 != 0).collect(),
                size: [8, 8],
                name: "m.png".into(),
            },
            Task::RandomPixels { fraction: 0.5 },
            Task::Superres { factor: 2 },
            Task::Cs { fraction: 0.25 },
            Task::Deblur { cutoff: 2.0 },
        ];
        for task in &tasks {
            let op = task.build(shape, 1).unwrap();
            assert_eq!(op.dim(), 64, "{task:?}");
            let x: Vec<f32> = (0..64).map(|i| ((i * 37) % 11) as f32 / 11.0).collect();
            let c = op.measure(&x);
            let back = op.measure(&op.adjoint(&c));
            let err = c
                .iter()
                .zip(&back)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(err < 1e-4, "{task:?}: M Mᵀ M x − M x up to {err}");
        }
        let outside = Task::InpaintBox {
            top: 6,
            left: 0,
            height: 3,
            width: 3,
        };
        assert_eq!(outside.build(shape, 0).err().unwrap().field, "mask_box");
        let small = Task::InpaintMask {
            known: vec![true; 16],
            size: [4, 4],
            name: "m.png".into(),
        };
        assert_eq!(small.build(shape, 0).err().unwrap().field, "mask");
        let json = serde_json::to_value(&tasks[3]).unwrap();
        assert_eq!(json, serde_json::json!({"task": "superres", "factor": 2}));
    }
}
