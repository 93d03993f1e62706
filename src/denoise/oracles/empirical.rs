//! The empirical-optimal denoiser: the MMSE denoiser of the empirical distribution of a
//! training set, x̂(y) = Σₖ wₖ xₖ with wₖ ∝ exp(−‖y − xₖ‖²/2σ²) — what a perfectly memorizing
//! network converges to, and the reference the generalization study measures networks against.
//!
//! The distances come from GEMMs: ‖y − xₖ‖² = ‖y‖² + ‖xₖ‖² − 2⟨y, xₖ⟩ on mean-removed images.
//! In f32 that expansion's rounding error (at most γ_d‖y‖‖xₖ‖ per product, γ_d = d·2⁻²⁴, about
//! 10⁻² for 28×28 images) divided by 2σ² would move the weights at the small σ where the oracle
//! memorizes, and the finite-difference Jacobians built on it difference outputs 10⁻³ apart. So
//! the f32 GEMM only screens: a training image whose distance, even with that error against it,
//! is more than 2σ²·[`SCREEN`] beyond the nearest one has a weight below 10⁻¹³ of the total and
//! is dropped; the others' distances are recomputed exactly (f64 sums of f32 differences). When
//! the posterior is broad (large σ: many images survive) the distances are one f64 GEMM instead,
//! and the weighted sum a second one.

use crate::data::Images;
use crate::denoise::{DenoiseError, Denoiser, FiniteDifferences, JacobianAt, Linearize};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;
use std::sync::OnceLock;

/// Weights below this fraction of the total are dropped from the weighted sum.
const NEGLIGIBLE: f64 = 1e-12;

/// Log-weight margin of the screening: images further than 2σ²·30 beyond the nearest (after the
/// rounding bound) weigh less than e⁻³⁰ ≈ 10⁻¹³ of it, below [`NEGLIGIBLE`].
const SCREEN: f64 = 30.0;

/// `image` − `mean`, in f64.
fn centred<'a>(image: &'a [f32], mean: &'a [f64]) -> impl Iterator<Item = f64> + 'a {
    image.iter().zip(mean).map(|(v, m)| *v as f64 - m)
}

/// The MMSE denoiser of the empirical distribution of `train` (posterior mean over the training
/// images): it reproduces training images and is what a memorizing network converges to.
pub struct EmpiricalOptimal {
    train: Images,
    /// The training images' mean, removed before the distances (smaller norms, smaller
    /// rounding).
    mean: Vec<f64>,
    /// Mean-removed training images, row-major `[N, d]`, in f32 (the screening GEMM) and in
    /// f64 (the broad posterior's GEMMs; made on first use, as most calls never need it).
    rows32: Vec<f32>,
    rows: OnceLock<Vec<f64>>,
    /// ‖xₖ − mean‖².
    norms: Vec<f64>,
    /// The largest ‖xₖ − mean‖ (the screening's rounding bound).
    max_norm: f64,
}

impl EmpiricalOptimal {
    /// The oracle for a training set.
    pub fn new(train: Images) -> Self {
        let (n, d) = (train.len(), train.dim());
        let mut mean = vec![0.0f64; d];
        for k in 0..n {
            for (m, v) in mean.iter_mut().zip(train.image(k)) {
                *m += *v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
        let centred = |k: usize| centred(train.image(k), &mean);
        let rows32 = (0..n).flat_map(|k| centred(k).map(|v| v as f32)).collect();
        let norms: Vec<f64> = (0..n).map(|k| centred(k).map(|v| v * v).sum()).collect();
        let max_norm = norms.iter().cloned().fold(0.0, f64::max).sqrt();
        Self {
            train,
            mean,
            rows32,
            rows: OnceLock::new(),
            norms,
            max_norm,
        }
    }

    /// The mean-removed training images in f64, row-major `[N, d]`.
    fn rows(&self) -> &[f64] {
        self.rows.get_or_init(|| {
            (0..self.train.len())
                .flat_map(|k| centred(self.train.image(k), &self.mean))
                .collect()
        })
    }

    /// ‖y − xₖ‖², differences and sum in f64 (exact but for the sum's rounding).
    fn distance(&self, y: &[f32], k: usize) -> f64 {
        y.iter()
            .zip(self.train.image(k))
            .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
            .sum()
    }

    /// For each image of `y`, the training images that can carry weight: those within
    /// 2σ²·[`SCREEN`] of the nearest by the f32 GEMM's distances, widened by its rounding bound.
    fn screen(&self, y: &Images, sigma: f64) -> Vec<Vec<usize>> {
        let (n, d, big_n) = (y.len(), y.dim(), self.train.len());
        let ys: Vec<f32> = (0..n)
            .flat_map(|i| centred(y.image(i), &self.mean).map(|v| v as f32))
            .collect();
        let mut g = vec![0.0f32; n * big_n];
        // as Gᵀ = X Yᵀ (N × n) into column-major storage, which is G row-major
        matmul(
            MatMut::from_column_major_slice_mut(&mut g, big_n, n),
            Accum::Replace,
            MatRef::from_row_major_slice(&self.rows32, big_n, d),
            MatRef::from_row_major_slice(&ys, n, d).transpose(),
            1.0f32,
            Par::rayon(0),
        );
        // γ_d for an f32 dot product of length d, whatever the summation order
        let u = f32::EPSILON as f64 / 2.0;
        let gamma = d as f64 * u / (1.0 - d as f64 * u).max(0.5);
        let margin = 2.0 * sigma * sigma * SCREEN;
        g.par_chunks(big_n.max(1))
            .zip(ys.par_chunks(d.max(1)))
            .map(|(row, yi)| {
                let yn: f64 = yi.iter().map(|v| (*v as f64).powi(2)).sum();
                // each approximate distance is within 2γ‖y‖‖xₖ‖ (plus the rounding of y's
                // own f32 copy, bounded alike) of the exact one
                let err = 4.0 * gamma * yn.sqrt() * self.max_norm + 1e-12 * yn;
                let approx = |k: usize| yn + self.norms[k] - 2.0 * row[k] as f64;
                let nearest = (0..big_n).map(approx).fold(f64::INFINITY, f64::min);
                (0..big_n)
                    .filter(|&k| approx(k) <= nearest + 2.0 * err + margin)
                    .collect()
            })
            .collect()
    }

    /// x̂ from exact distances to the screened candidates of each image.
    fn mean_over_candidates(&self, y: &Images, sigma: f64, candidates: &[Vec<usize>]) -> Vec<f32> {
        let d = y.dim();
        let two_s2 = (2.0 * sigma * sigma).max(f64::MIN_POSITIVE);
        let mut out = vec![0.0f32; y.len() * d];
        out.par_chunks_mut(d.max(1))
            .zip(candidates.par_iter())
            .enumerate()
            .for_each(|(i, (x_hat, cand))| {
                let logw: Vec<f64> = cand
                    .iter()
                    .map(|&k| -self.distance(y.image(i), k) / two_s2)
                    .collect();
                let max = logw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let w: Vec<f64> = logw.iter().map(|l| (l - max).exp()).collect();
                let z: f64 = w.iter().sum();
                let mut acc = vec![0.0f64; d];
                for (&k, wk) in cand.iter().zip(&w) {
                    if wk / z < NEGLIGIBLE {
                        continue;
                    }
                    for (a, v) in acc.iter_mut().zip(self.train.image(k)) {
                        *a += wk / z * *v as f64;
                    }
                }
                x_hat.iter_mut().zip(acc).for_each(|(o, a)| *o = a as f32);
            });
        out
    }

    /// Normalized posterior weights of the images `y`, row-major `[n, N]`, from an f64 GEMM.
    fn weights(&self, y: &Images, sigma: f64) -> Vec<f64> {
        let (n, d, big_n) = (y.len(), y.dim(), self.train.len());
        let ys = Mat::from_fn(n, d, |i, p| y.image(i)[p] as f64 - self.mean[p]);
        let mut w = vec![0.0f64; n * big_n];
        // ⟨y, xₖ⟩ for every pair
        matmul(
            MatMut::from_row_major_slice_mut(&mut w, n, big_n),
            Accum::Replace,
            ys.as_ref(),
            MatRef::from_row_major_slice(self.rows(), big_n, d).transpose(),
            1.0,
            Par::rayon(0),
        );
        let two_s2 = (2.0 * sigma * sigma).max(f64::MIN_POSITIVE);
        let y_norms: Vec<f64> = (0..n)
            .map(|i| ys.row(i).iter().map(|v| v * v).sum())
            .collect();
        w.par_chunks_mut(big_n.max(1))
            .zip(y_norms.par_iter())
            .for_each(|(row, yn)| {
                let mut max = f64::NEG_INFINITY;
                for (g, xn) in row.iter_mut().zip(&self.norms) {
                    let dist = (yn + xn - 2.0 * *g).max(0.0);
                    *g = -dist / two_s2;
                    max = max.max(*g);
                }
                let mut z = 0.0;
                for g in row.iter_mut() {
                    *g = (*g - max).exp();
                    z += *g;
                }
                for g in row.iter_mut() {
                    *g = if *g / z < NEGLIGIBLE { 0.0 } else { *g / z };
                }
            });
        w
    }
}

impl Denoiser for EmpiricalOptimal {
    fn denoise(&self, y: &Images, sigma: Option<f32>) -> Result<Images, DenoiseError> {
        let sigma = sigma.ok_or(DenoiseError::NeedsSigma("the empirical-optimal denoiser"))?;
        if y.image_shape() != self.train.image_shape() {
            return Err(DenoiseError::Shape {
                expected: format!("{:?}", self.train.image_shape()),
                got: y.image_shape(),
            });
        }
        let (n, d) = (y.len(), y.dim());
        let candidates = self.screen(y, sigma as f64);
        let kept: usize = candidates.iter().map(Vec::len).sum();
        if kept * 8 < n * self.train.len() {
            return Ok(Images::new(
                self.mean_over_candidates(y, sigma as f64, &candidates),
                y.shape(),
            ));
        }
        let w = self.weights(y, sigma as f64);
        let big_n = self.train.len();
        let kept = w.iter().filter(|v| **v > 0.0).count();
        let mut out = vec![0.0f32; n * d];
        if kept * 8 < n * big_n {
            // few weights matter: sum those images
            out.par_chunks_mut(d.max(1))
                .enumerate()
                .for_each(|(i, x_hat)| {
                    let mut acc = self.mean.clone();
                    let row = &w[i * big_n..][..big_n];
                    for (k, wk) in row.iter().enumerate().filter(|(_, v)| **v > 0.0) {
                        for (a, v) in acc.iter_mut().zip(&self.rows()[k * d..][..d]) {
                            *a += wk * v;
                        }
                    }
                    x_hat.iter_mut().zip(acc).for_each(|(o, a)| *o = a as f32);
                });
        } else {
            let mut x_hat = Mat::<f64>::zeros(n, d);
            matmul(
                x_hat.as_mut(),
                Accum::Replace,
                MatRef::from_row_major_slice(&w, n, big_n),
                MatRef::from_row_major_slice(self.rows(), big_n, d),
                1.0,
                Par::rayon(0),
            );
            for (i, o) in out.chunks_mut(d.max(1)).enumerate() {
                for (p, v) in o.iter_mut().enumerate() {
                    *v = (x_hat[(i, p)] + self.mean[p]) as f32;
                }
            }
        }
        Ok(Images::new(out, y.shape()))
    }

    fn name(&self) -> String {
        "empirical-optimal".into()
    }
}

impl Linearize for EmpiricalOptimal {
    /// By central differences (the posterior mean is smooth in y).
    fn linearize(
        &self,
        y: &Images,
        sigma: Option<f32>,
    ) -> Result<Box<dyn JacobianAt + '_>, DenoiseError> {
        Ok(Box::new(FiniteDifferences::new(self, y, sigma, 1e-3)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::Family;

    /// The definition, one image and one training image at a time in f64.
    fn by_definition(train: &Images, y: &[f32], sigma: f64) -> Vec<f64> {
        let logw: Vec<f64> = (0..train.len())
            .map(|k| {
                let dist: f64 = y
                    .iter()
                    .zip(train.image(k))
                    .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
                    .sum();
                -dist / (2.0 * sigma * sigma)
            })
            .collect();
        let m = logw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = logw.iter().map(|l| (l - m).exp()).collect();
        let z: f64 = w.iter().sum();
        let mut x = vec![0.0; train.dim()];
        for (k, wk) in w.iter().enumerate() {
            for (a, v) in x.iter_mut().zip(train.image(k)) {
                *a += wk / z * *v as f64;
            }
        }
        x
    }

    /// The GEMM route (sparse sum at small σ, dense at large σ) equals the definition.
    #[test]
    fn matches_the_definition_at_every_noise_level() {
        let train = Family::Disks(Default::default())
            .generate(12, 40, 2)
            .unwrap();
        let oracle = EmpiricalOptimal::new(train.clone());
        for (t, sigma) in [0.02f32, 0.1, 0.3, 1.0, 5.0].into_iter().enumerate() {
            let y = crate::analysis::metrics::add_noise(&train.select(&[0, 7, 9]), sigma, t as u64);
            let got = oracle.denoise(&y, Some(sigma)).unwrap();
            for i in 0..y.len() {
                let want = by_definition(&train, y.image(i), sigma as f64);
                for (a, b) in got.image(i).iter().zip(&want) {
                    assert!((*a as f64 - b).abs() < 1e-5, "σ {sigma}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn empirical_optimal_limits() {
        let train = Family::Disks(Default::default()).generate(8, 5, 1).unwrap();
        let oracle = EmpiricalOptimal::new(train.clone());
        // σ → 0: the nearest training image
        let mut y = train.select(&[3]);
        y.as_mut_slice().iter_mut().for_each(|v| *v += 0.01);
        let near = oracle.denoise(&y, Some(1e-3)).unwrap();
        for (a, b) in near.image(0).iter().zip(train.image(3)) {
            assert!((a - b).abs() < 1e-5);
        }
        // σ → ∞: the training mean
        let far = oracle.denoise(&y, Some(1e4)).unwrap();
        for p in 0..train.dim() {
            let mean: f32 = (0..5).map(|k| train.image(k)[p]).sum::<f32>() / 5.0;
            assert!((far.image(0)[p] - mean).abs() < 1e-4);
        }
        assert!(oracle.denoise(&y, None).is_err());
    }

    #[test]
    fn empirical_optimal_mse_is_sigma_squared_times_divergence() {
        // For the exact MMSE denoiser f* of any prior, E‖f*(y) − x‖² = σ² E[tr ∇f*(y)]
        // (Miyasawa/Stein). Check it on the empirical distribution of 6 images of 4×4.
        use crate::rng::{stream, Purpose};
        use rand::Rng;
        use rand_distr::{Distribution, StandardNormal};
        let train = Family::Disks(Default::default()).generate(4, 6, 3).unwrap();
        let oracle = EmpiricalOptimal::new(train.clone());
        let sigma = 0.3f32;
        let trials = 400;
        let mut diffs = Vec::with_capacity(trials);
        for t in 0..trials {
            let mut rng = stream(9, Purpose::Probe, t as u64);
            let k = rng.random_range(0..train.len());
            let mut y = train.select(&[k]);
            for v in y.as_mut_slice() {
                let z: f32 = StandardNormal.sample(&mut rng);
                *v += sigma * z;
            }
            let x_hat = oracle.denoise(&y, Some(sigma)).unwrap();
            let err: f64 = crate::analysis::metrics::mse(x_hat.as_slice(), train.image(k)) * 16.0;
            let at = FiniteDifferences::new(&oracle, &y, Some(sigma), 1e-3).unwrap();
            let jac = at.matrix();
            let div: f64 = (0..16).map(|i| jac[i * 16 + i] as f64).sum();
            diffs.push(err - (sigma as f64).powi(2) * div);
        }
        let n = trials as f64;
        let mean = diffs.iter().sum::<f64>() / n;
        let se = (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt();
        assert!(mean.abs() < 4.0 * se, "E[MSE − σ² tr J] = {mean} ± {se}");
    }
}
