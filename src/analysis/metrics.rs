//! Denoising quality: MSE and PSNR (peak 1, pixels in [0, 1]) as a function of σ.

use crate::data::Images;
use crate::denoise::{DenoiseError, Denoiser};
use crate::rng::{stream, Purpose};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// Mean squared error per pixel between two equally shaped slices.
pub fn mse(a: &[f32], b: &[f32]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        / a.len().max(1) as f64
}

/// PSNR in dB for peak value 1: 10·log₁₀(1/MSE).
pub fn psnr_from_mse(mse: f64) -> f64 {
    -10.0 * mse.max(1e-20).log10()
}

/// Adds Gaussian noise of level `sigma`; image k's noise comes from stream (seed, EvalNoise, k),
/// so every denoiser evaluated with the same seed sees the same noisy images.
pub fn add_noise(x: &Images, sigma: f32, seed: u64) -> Images {
    let mut y = x.clone();
    let d = x.dim();
    for (k, img) in y.as_mut_slice().chunks_exact_mut(d).enumerate() {
        let mut rng = stream(seed, Purpose::EvalNoise, k as u64);
        for v in img {
            let z: f32 = StandardNormal.sample(&mut rng);
            *v += sigma * z;
        }
    }
    y
}

/// One row of a denoising table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DenoisingRow {
    /// Noise level.
    pub sigma: f32,
    /// Mean squared error of the denoised images (per pixel, averaged over images).
    pub mse: f64,
    /// PSNR of the denoised images, from the mean MSE.
    pub psnr: f64,
    /// PSNR of the noisy input.
    pub input_psnr: f64,
}

/// MSE and PSNR of `denoiser` on `clean` at each σ (noise seeded by `seed` and σ's position).
pub fn denoising_table(
    denoiser: &impl Denoiser,
    clean: &Images,
    sigmas: &[f32],
    seed: u64,
) -> Result<Vec<DenoisingRow>, DenoiseError> {
    sigmas
        .iter()
        .enumerate()
        .map(|(j, &sigma)| {
            let y = add_noise(clean, sigma, seed.wrapping_add(j as u64));
            let x_hat = denoiser.denoise(&y, Some(sigma))?;
            let m = mse(x_hat.as_slice(), clean.as_slice());
            let input = mse(y.as_slice(), clean.as_slice());
            Ok(DenoisingRow {
                sigma,
                mse: m,
                psnr: psnr_from_mse(m),
                input_psnr: psnr_from_mse(input),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_has_the_right_level_and_is_seeded() {
        let x = Images::zeros([4, 1, 16, 16]);
        let y = add_noise(&x, 0.2, 5);
        let m = mse(y.as_slice(), x.as_slice());
        assert!((m.sqrt() - 0.2).abs() < 0.02, "{}", m.sqrt());
        assert_eq!(y, add_noise(&x, 0.2, 5));
        assert_ne!(y, add_noise(&x, 0.2, 6));
        assert!((psnr_from_mse(0.01) - 20.0).abs() < 1e-9);
    }
}
