//! Denoising quality: MSE and PSNR (peak 1, pixels in [0, 1]) as a function of σ.

use crate::data::Images;
use crate::denoise::{DenoiseError, Denoiser};
use crate::rng::{derive, stream, Purpose};
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

/// `clean` plus noise of level `sigma`, the noise named by (seed, σ): every denoiser
/// evaluated with the same seed sees the same noisy images at a given σ, whichever other noise
/// levels are evaluated beside it.
pub fn noisy(clean: &Images, sigma: f32, seed: u64) -> Images {
    add_noise(
        clean,
        sigma,
        derive(seed, Purpose::EvalNoise, &[sigma.to_bits() as u64]),
    )
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

/// MSE and PSNR of `denoiser` on `clean` at each σ (the noise of [`noisy`]).
pub fn denoising_table(
    denoiser: &impl Denoiser,
    clean: &Images,
    sigmas: &[f32],
    seed: u64,
) -> Result<Vec<DenoisingRow>, DenoiseError> {
    sigmas
        .iter()
        .map(|&sigma| {
            let y = noisy(clean, sigma, seed);
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

/// Convolves each of `lines` lines of `len` values with the odd-length `kernel`, clamping at the
/// ends; line l, position i sits at `l·line_stride + i·step` (rows: [w, 1]; columns: [1, w]).
fn blur_lines(
    src: &[f64],
    dst: &mut [f64],
    [lines, len]: [usize; 2],
    [line_stride, step]: [usize; 2],
    kernel: &[f64],
) {
    let radius = (kernel.len() / 2) as i64;
    for l in 0..lines {
        for i in 0..len {
            dst[l * line_stride + i * step] = kernel
                .iter()
                .enumerate()
                .map(|(j, k)| {
                    let ii = (i as i64 + j as i64 - radius).clamp(0, len as i64 - 1) as usize;
                    k * src[l * line_stride + ii * step]
                })
                .sum();
        }
    }
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

/// Structural similarity (Wang et al. 2004) of two single-image `[c, h, w]` slices with values in
/// [0, 1]: Gaussian window σ = 1.5 (radius 5), K₁ = 0.01, K₂ = 0.03, averaged over pixels and
/// channels.
pub fn ssim(a: &[f32], b: &[f32], shape: [usize; 3]) -> f64 {
    let [c, h, w] = shape;
    let (c1, c2) = (0.01f64.powi(2), 0.03f64.powi(2));
    let radius = 5i64;
    let kernel: Vec<f64> = (-radius..=radius)
        .map(|i| (-(i * i) as f64 / (2.0 * 1.5 * 1.5)).exp())
        .collect();
    let ksum: f64 = kernel.iter().sum();
    let kernel: Vec<f64> = kernel.iter().map(|k| k / ksum).collect();
    // separable Gaussian filter with edge clamping: along rows, then along columns
    let blur = |img: &[f64]| -> Vec<f64> {
        let mut tmp = vec![0.0; h * w];
        let mut out = vec![0.0; h * w];
        blur_lines(img, &mut tmp, [h, w], [w, 1], &kernel);
        blur_lines(&tmp, &mut out, [w, h], [1, w], &kernel);
        out
    };
    let mut total = 0.0;
    for ch in 0..c {
        let x: Vec<f64> = a[ch * h * w..(ch + 1) * h * w]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let y: Vec<f64> = b[ch * h * w..(ch + 1) * h * w]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let prod =
            |p: &[f64], q: &[f64]| -> Vec<f64> { p.iter().zip(q).map(|(u, v)| u * v).collect() };
        let (mx, my) = (blur(&x), blur(&y));
        let (sxx, syy, sxy) = (
            blur(&prod(&x, &x)),
            blur(&prod(&y, &y)),
            blur(&prod(&x, &y)),
        );
        for i in 0..h * w {
            let (vx, vy, cxy) = (
                sxx[i] - mx[i] * mx[i],
                syy[i] - my[i] * my[i],
                sxy[i] - mx[i] * my[i],
            );
            total += ((2.0 * mx[i] * my[i] + c1) * (2.0 * cxy + c2))
                / ((mx[i] * mx[i] + my[i] * my[i] + c1) * (vx + vy + c2));
        }
    }
    total / (c * h * w) as f64
}

#[cfg(test)]
mod ssim_tests {
    use super::*;
    use crate::data::synthetic::{Disks, Family};

    #[test]
    fn rows_then_columns_is_the_2d_clamped_convolution() {
        let (h, w) = (5, 7);
        let img: Vec<f64> = (0..h * w).map(|i| ((i * 37) % 11) as f64).collect();
        let kernel = [0.2, 0.5, 0.3];
        let (mut tmp, mut out) = (vec![0.0; h * w], vec![0.0; h * w]);
        blur_lines(&img, &mut tmp, [h, w], [w, 1], &kernel);
        blur_lines(&tmp, &mut out, [w, h], [1, w], &kernel);
        let clamp = |v: i64, n: usize| v.clamp(0, n as i64 - 1) as usize;
        for y in 0..h {
            for x in 0..w {
                let mut want = 0.0;
                for (a, ka) in kernel.iter().enumerate() {
                    for (b, kb) in kernel.iter().enumerate() {
                        let (yy, xx) = (
                            clamp(y as i64 + a as i64 - 1, h),
                            clamp(x as i64 + b as i64 - 1, w),
                        );
                        want += ka * kb * img[yy * w + xx];
                    }
                }
                assert!((out[y * w + x] - want).abs() < 1e-12, "({y}, {x})");
            }
        }
    }

    #[test]
    fn ssim_is_one_for_identical_images_and_falls_with_noise() {
        let x = Family::Disks(Disks {}).generate(16, 1, 2).unwrap();
        let shape = x.image_shape();
        assert!((ssim(x.image(0), x.image(0), shape) - 1.0).abs() < 1e-9);
        let a = ssim(add_noise(&x, 0.05, 1).image(0), x.image(0), shape);
        let b = ssim(add_noise(&x, 0.3, 1).image(0), x.image(0), shape);
        assert!(1.0 > a && a > b, "{a} {b}");
    }
}
