//! The classical, non-learned reference of the optimality study: sliding-window DCT hard
//! thresholding (Yu & Sapiro, "DCT image denoising: a simple and effective image denoising
//! algorithm", IPOL 2011). Every p×p patch (stride 1) is transformed by the orthonormal 2-D
//! DCT-II, coefficients below `threshold`·σ are zeroed (the patch mean is always kept), the patch
//! is transformed back, and each pixel is the average of its estimates from the patches that
//! cover it. White noise of level σ stays white of level σ in an orthonormal basis, so the
//! threshold is in units of σ; 3σ is the paper's choice. It needs σ: an oracle-σ method, as
//! BM3D is when given the true σ.

use super::{DenoiseError, Denoiser};
use crate::data::Images;
use rayon::prelude::*;

/// Sliding-window DCT hard thresholding.
#[derive(Clone, Debug, PartialEq)]
pub struct DctShrinkage {
    /// Patch side p (clipped to the image size).
    pub patch: usize,
    /// Threshold in units of σ.
    pub threshold: f32,
}

impl Default for DctShrinkage {
    fn default() -> Self {
        Self {
            patch: 8,
            threshold: 3.0,
        }
    }
}

/// The orthonormal DCT-II matrix C (p×p, row k = basis function k): coefficients c = C·x.
fn dct_matrix(p: usize) -> Vec<f32> {
    let mut c = vec![0.0f32; p * p];
    for k in 0..p {
        let scale = if k == 0 {
            (1.0 / p as f64).sqrt()
        } else {
            (2.0 / p as f64).sqrt()
        };
        for i in 0..p {
            let angle = std::f64::consts::PI * (2 * i + 1) as f64 * k as f64 / (2 * p) as f64;
            c[k * p + i] = (scale * angle.cos()) as f32;
        }
    }
    c
}

/// a (p×p) · b (p×p), or a·bᵀ when `transpose_b`.
fn matmul(a: &[f32], b: &[f32], p: usize, transpose_b: bool, out: &mut [f32]) {
    for i in 0..p {
        for j in 0..p {
            let mut s = 0.0;
            for k in 0..p {
                let bkj = if transpose_b {
                    b[j * p + k]
                } else {
                    b[k * p + j]
                };
                s += a[i * p + k] * bkj;
            }
            out[i * p + j] = s;
        }
    }
}

impl DctShrinkage {
    /// One `h × w` channel.
    fn channel(&self, y: &[f32], h: usize, w: usize, sigma: f32) -> Vec<f32> {
        let p = self.patch.min(h).min(w).max(1);
        let c = dct_matrix(p);
        let ct: Vec<f32> = (0..p * p).map(|i| c[(i % p) * p + i / p]).collect();
        let cut = self.threshold * sigma;
        let mut sum = vec![0.0f32; h * w];
        let mut count = vec![0.0f32; h * w];
        let (mut patch, mut tmp, mut coef) = (vec![0.0; p * p], vec![0.0; p * p], vec![0.0; p * p]);
        for r in 0..=h - p {
            for s in 0..=w - p {
                for i in 0..p {
                    patch[i * p..(i + 1) * p].copy_from_slice(&y[(r + i) * w + s..][..p]);
                }
                // coefficients C·X·Cᵀ
                matmul(&c, &patch, p, false, &mut tmp);
                matmul(&tmp, &c, p, true, &mut coef);
                for (k, v) in coef.iter_mut().enumerate() {
                    if k != 0 && v.abs() < cut {
                        *v = 0.0;
                    }
                }
                // back: Cᵀ·K·C
                matmul(&ct, &coef, p, false, &mut tmp);
                matmul(&tmp, &ct, p, true, &mut patch);
                for i in 0..p {
                    for j in 0..p {
                        sum[(r + i) * w + s + j] += patch[i * p + j];
                        count[(r + i) * w + s + j] += 1.0;
                    }
                }
            }
        }
        sum.iter().zip(&count).map(|(s, n)| s / n).collect()
    }
}

impl Denoiser for DctShrinkage {
    fn denoise(&self, y: &Images, sigma: Option<f32>) -> Result<Images, DenoiseError> {
        let sigma = sigma.ok_or(DenoiseError::NeedsSigma("DCT shrinkage"))?;
        let [_, _, h, w] = y.shape();
        let out: Vec<f32> = y
            .as_slice()
            .par_chunks(h * w)
            .flat_map_iter(|ch| self.channel(ch, h, w, sigma))
            .collect();
        Ok(Images::new(out, y.shape()))
    }

    fn name(&self) -> String {
        format!(
            "DCT {0}×{0} hard threshold {1}σ",
            self.patch, self.threshold
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::metrics::{mse, noisy};
    use crate::data::synthetic::{CAlpha, Family};

    #[test]
    fn the_dct_is_orthonormal_and_a_zero_threshold_is_the_identity() {
        let p = 8;
        let c = dct_matrix(p);
        let mut cct = vec![0.0; p * p];
        matmul(&c, &c, p, true, &mut cct);
        for i in 0..p {
            for j in 0..p {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((cct[i * p + j] - want).abs() < 1e-5);
            }
        }
        let x = Family::CAlpha(CAlpha::default())
            .generate(16, 2, 1)
            .unwrap();
        let keep = DctShrinkage {
            threshold: 0.0,
            ..Default::default()
        };
        let same = keep.denoise(&x, Some(0.1)).unwrap();
        assert!(mse(same.as_slice(), x.as_slice()) < 1e-10);
    }

    #[test]
    fn shrinkage_removes_noise_from_piecewise_smooth_images() {
        let x = Family::CAlpha(CAlpha::default())
            .generate(32, 4, 2)
            .unwrap();
        let dct = DctShrinkage::default();
        for sigma in [0.05f32, 0.2] {
            let y = noisy(&x, sigma, 3);
            let out = dct.denoise(&y, Some(sigma)).unwrap();
            let (ours, input) = (
                mse(out.as_slice(), x.as_slice()),
                mse(y.as_slice(), x.as_slice()),
            );
            assert!(ours < 0.5 * input, "σ = {sigma}: {ours} vs noisy {input}");
        }
        assert!(dct.denoise(&x, None).is_err());
    }
}
