//! Sample quality a reader can check, each reported beside its floor (the same measure between
//! as many held-out images and the reference, which no sampler can beat on average):
//!
//! - the Fréchet distance between Gaussians fitted to the samples and to reference images in
//!   the space of the reference's leading principal components (FID's formula, with the data's
//!   own PCA as the feature map: there is no pretrained network to borrow at 28×28 gray);
//! - the radially averaged power spectrum of the samples against the reference's: blurry
//!   samples lack power at high frequencies, noisy ones have too much. Summarized as the mean
//!   |log₁₀| of the ratio over radial frequencies (0: the same spectrum; 0.3: a factor 2).

use crate::data::Images;
use faer::{Mat, Side};
use serde::{Deserialize, Serialize};

/// Principal components kept for the Fréchet distance: enough to hold most of the variance of
/// small images, few enough to be estimated from a few dozen samples.
pub const COMPONENTS: usize = 16;

/// The feature map of the Fréchet distance: the reference's mean and leading principal
/// directions.
pub struct PcaSpace {
    mean: Vec<f64>,
    /// `k × D`, rows orthonormal, by decreasing variance.
    components: Mat<f64>,
}

impl PcaSpace {
    /// The leading `k` principal components of `reference` (at most 2000 of its images are
    /// used). `None` when there are fewer than two images or the decomposition fails.
    pub fn fit(reference: &Images, k: usize) -> Option<Self> {
        let n = reference.len().min(2000);
        let d = reference.dim();
        if n < 2 || d == 0 {
            return None;
        }
        let mut mean = vec![0.0f64; d];
        for i in 0..n {
            for (m, v) in mean.iter_mut().zip(reference.image(i)) {
                *m += *v as f64 / n as f64;
            }
        }
        let centered = Mat::<f64>::from_fn(n, d, |i, j| reference.image(i)[j] as f64 - mean[j]);
        let cov = centered.transpose() * &centered * (1.0 / (n - 1) as f64);
        let evd = cov.self_adjoint_eigen(Side::Lower).ok()?;
        let k = k.min(d);
        // faer sorts ascending
        let u = evd.U();
        let components = Mat::<f64>::from_fn(k, d, |c, j| u[(j, d - 1 - c)]);
        Some(Self { mean, components })
    }

    /// The features (`n × k`) of `images`.
    fn project(&self, images: &Images) -> Mat<f64> {
        let d = self.mean.len();
        let x = Mat::<f64>::from_fn(images.len(), d, |i, j| {
            images.image(i)[j] as f64 - self.mean[j]
        });
        x * self.components.transpose()
    }

    /// The Fréchet distance between Gaussians fitted to the features of `a` and of `b`:
    /// ‖μa − μb‖² + tr(Ca + Cb − 2 (Ca^½ Cb Ca^½)^½). NaN when either has fewer than two images.
    pub fn frechet(&self, a: &Images, b: &Images) -> f64 {
        let (Some((ma, ca)), Some((mb, cb))) =
            (moments(&self.project(a)), moments(&self.project(b)))
        else {
            return f64::NAN;
        };
        let mean: f64 = ma.iter().zip(&mb).map(|(x, y)| (x - y).powi(2)).sum();
        let Some(sa) = sqrtm(&ca) else {
            return f64::NAN;
        };
        let inner = &sa * &cb * &sa;
        let Some(root) = sqrtm(&inner) else {
            return f64::NAN;
        };
        let k = ca.nrows();
        let tr = |m: &Mat<f64>| (0..k).map(|i| m[(i, i)]).sum::<f64>();
        (mean + tr(&ca) + tr(&cb) - 2.0 * tr(&root)).max(0.0)
    }
}

/// Mean and covariance (unbiased) of the rows of `f`.
fn moments(f: &Mat<f64>) -> Option<(Vec<f64>, Mat<f64>)> {
    let (n, k) = (f.nrows(), f.ncols());
    if n < 2 {
        return None;
    }
    let mean: Vec<f64> = (0..k)
        .map(|j| (0..n).map(|i| f[(i, j)]).sum::<f64>() / n as f64)
        .collect();
    let c = Mat::<f64>::from_fn(n, k, |i, j| f[(i, j)] - mean[j]);
    Some((mean, c.transpose() * &c * (1.0 / (n - 1) as f64)))
}

/// The square root of a symmetric positive semi-definite matrix (negative eigenvalues from
/// rounding clamped to 0).
fn sqrtm(m: &Mat<f64>) -> Option<Mat<f64>> {
    let k = m.nrows();
    let sym = Mat::<f64>::from_fn(k, k, |i, j| 0.5 * (m[(i, j)] + m[(j, i)]));
    let evd = sym.self_adjoint_eigen(Side::Lower).ok()?;
    let (u, s) = (evd.U(), evd.S().column_vector());
    Some(Mat::<f64>::from_fn(k, k, |i, j| {
        (0..k)
            .map(|c| u[(i, c)] * s[c].max(0.0).sqrt() * u[(j, c)])
            .sum()
    }))
}

/// The radially averaged power spectrum of `images` (mean over images and channels), one value
/// per integer radial frequency 1 … min(h, w)/2 (cycles per image; the mean, frequency 0, is
/// left out).
pub fn radial_spectrum(images: &Images) -> Vec<f64> {
    let [c, h, w] = images.image_shape();
    let bins = h.min(w) / 2;
    let (mut sum, mut count) = (vec![0.0f64; bins], vec![0usize; bins]);
    for i in 0..images.len() {
        for ch in images.image(i).chunks_exact(h * w).take(c) {
            let p = crate::fourier::power(ch, h, w);
            for ky in 0..h {
                for kx in 0..w {
                    let r = crate::fourier::radial_freq(ky, kx, h, w).round() as usize;
                    if (1..=bins).contains(&r) {
                        sum[r - 1] += p[ky * w + kx];
                        count[r - 1] += 1;
                    }
                }
            }
        }
    }
    sum.iter()
        .zip(&count)
        .map(|(s, n)| s / (*n).max(1) as f64)
        .collect()
}

/// Mean |log₁₀(P_a / P_b)| over radial frequencies of two spectra from [`radial_spectrum`].
pub fn spectral_log_ratio(a: &[f64], b: &[f64]) -> f64 {
    let terms: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(x, y)| **x > 0.0 && **y > 0.0)
        .map(|(x, y)| (x / y).log10().abs())
        .collect();
    terms.iter().sum::<f64>() / terms.len().max(1) as f64
}

/// The quality of one set of samples and the floor of each measure.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleQuality {
    /// Fréchet distance of the samples to the reference in its PCA space.
    pub frechet: f64,
    /// The same for as many held-out images: the floor.
    pub frechet_floor: f64,
    /// Mean |log₁₀| power-spectrum ratio of the samples to the reference.
    pub spectral_log_ratio: f64,
    /// The same for the held-out images.
    pub spectral_floor: f64,
}

/// Measures `samples` against `reference`, with `held_out` (as many images as `samples`,
/// disjoint from `reference`) giving each measure's floor.
pub fn measure(samples: &Images, held_out: &Images, reference: &Images) -> Option<SampleQuality> {
    let space = PcaSpace::fit(reference, COMPONENTS)?;
    let spectrum = radial_spectrum(reference);
    Some(SampleQuality {
        frechet: space.frechet(samples, reference),
        frechet_floor: space.frechet(held_out, reference),
        spectral_log_ratio: spectral_log_ratio(&radial_spectrum(samples), &spectrum),
        spectral_floor: spectral_log_ratio(&radial_spectrum(held_out), &spectrum),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::{Family, GaussianField};

    fn blur(images: &Images) -> Images {
        let [c, h, w] = images.image_shape();
        let mut out = images.clone();
        let n = images.len();
        for i in 0..n * c {
            let src = &images.as_slice()[i * h * w..(i + 1) * h * w];
            let dst = &mut out.as_mut_slice()[i * h * w..(i + 1) * h * w];
            for y in 0..h {
                for x in 0..w {
                    let mut s = 0.0;
                    for (dy, dx) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                        s += src[((y + dy) % h) * w + (x + dx) % w];
                    }
                    dst[y * w + x] = s / 4.0;
                }
            }
        }
        out
    }

    #[test]
    fn held_out_images_sit_at_the_floor_and_blur_or_a_constant_do_not() {
        let family = Family::Gaussian(GaussianField::default());
        let reference = family.generate(16, 600, 1).unwrap();
        let held_out = family.generate(16, 64, 2).unwrap();
        let q = measure(&held_out, &family.generate(16, 64, 3).unwrap(), &reference).unwrap();
        // two draws of held-out images: the same measure up to sampling error
        assert!(q.frechet < 2.0 * q.frechet_floor + 1e-9, "{q:?}");
        let blurred = measure(&blur(&held_out), &held_out, &reference).unwrap();
        assert!(
            blurred.spectral_log_ratio > 3.0 * blurred.spectral_floor,
            "{blurred:?}"
        );
        assert!(blurred.frechet > blurred.frechet_floor, "{blurred:?}");
        let flat = Images::new(vec![0.5; 64 * 256], [64, 1, 16, 16]);
        let flat_q = measure(&flat, &held_out, &reference).unwrap();
        assert!(flat_q.frechet > 5.0 * flat_q.frechet_floor, "{flat_q:?}");
    }

    #[test]
    fn the_frechet_distance_of_a_set_to_itself_is_zero_and_it_is_symmetric() {
        let family = Family::Gaussian(GaussianField::default());
        let a = family.generate(8, 200, 1).unwrap();
        let b = family.generate(8, 200, 2).unwrap();
        let space = PcaSpace::fit(&a, 8).unwrap();
        assert!(space.frechet(&a, &a).abs() < 1e-6);
        let (ab, ba) = (space.frechet(&a, &b), space.frechet(&b, &a));
        assert!((ab - ba).abs() < 1e-6 * ab.max(1e-12), "{ab} vs {ba}");
    }
}
