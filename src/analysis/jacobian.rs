//! Products with a denoiser's Jacobian J(y) = ∂f/∂y without forming it, and the full J for
//! small images. Any denoiser that implements [`Linearize`] — a network (exact, at its frozen
//! ReLU pattern), the Wiener filter (closed form), other oracles (central differences) — goes
//! through the same functions.
//!
//! For a bias-free ReLU network f is piecewise linear and homogeneous, hence f(y) = J(y)·y
//! exactly (Kadkhodaie et al. 2024, §3); [`homogeneity_error`] measures it.

use crate::data::Images;
use crate::denoise::JacobianAt;
#[cfg(doc)]
use crate::denoise::Linearize;

/// The full D×D Jacobian, row-major (row i is ∂fᵢ/∂y), from D VJPs with the unit vectors,
/// `chunk` at a time. For a network: one forward pass (the linearization), then D/chunk
/// adjoint passes; use for D up to a few thousand.
pub fn full(at: &dyn JacobianAt, chunk: usize) -> Vec<f32> {
    let [_, c, h, w] = at.shape();
    let d = c * h * w;
    let chunk = chunk.max(1);
    let mut jac = Vec::with_capacity(d * d);
    for start in (0..d).step_by(chunk) {
        let end = (start + chunk).min(d);
        let mut basis = Images::zeros([end - start, c, h, w]);
        for (r, i) in (start..end).enumerate() {
            basis.as_mut_slice()[r * d + i] = 1.0;
        }
        jac.extend(at.vjp(&basis).into_vec());
    }
    jac
}

/// (J + Jᵀ)v / 2: the symmetric part, whose eigenvectors are the GAHB, applied to one vector.
pub fn symmetric_product(at: &dyn JacobianAt, v: &[f32]) -> Vec<f32> {
    let vs = Images::new(v.to_vec(), at.shape());
    let (jv, vj) = (at.jvp(&vs), at.vjp(&vs));
    jv.as_slice()
        .iter()
        .zip(vj.as_slice())
        .map(|(a, b)| 0.5 * (a + b))
        .collect()
}

/// vₖᵀJ for a batch of flat vectors (the shape Hutchinson's estimator works in).
pub fn vjp_flat(at: &dyn JacobianAt, vs: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let [_, c, h, w] = at.shape();
    let out = at.vjp(&Images::new(vs.concat(), [vs.len(), c, h, w]));
    (0..vs.len()).map(|i| out.image(i).to_vec()).collect()
}

/// ‖J·y − f(y)‖/‖f(y)‖ for a row-major J: zero for a homogeneous (bias-free, piecewise-linear)
/// denoiser; for an affine one (the Wiener filter around its mean) it measures the offset.
pub fn homogeneity_error(jac: &[f32], y: &Images, fy: &Images) -> f64 {
    relative_error(&matvec(jac, y.as_slice()), fy.as_slice())
}

/// ‖a − b‖/‖b‖.
pub fn relative_error(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den.max(1e-30)).sqrt()
}

/// y ↦ J·y for a row-major D×D matrix.
pub fn matvec(jac: &[f32], y: &[f32]) -> Vec<f32> {
    let d = y.len();
    jac.chunks_exact(d)
        .map(|row| row.iter().zip(y).map(|(a, b)| (a * b) as f64).sum::<f64>() as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::spectrum::analyze;
    use crate::data::synthetic::{Family, GaussianField};
    use crate::denoise::{FiniteDifferences, Linearize, Wiener};
    use crate::fourier;

    #[test]
    fn wiener_jacobian_has_fourier_eigenvectors_and_wiener_gains() {
        let (n, sigma) = (8, 0.1);
        let field = GaussianField::default().periodic();
        let y = Family::Gaussian(field.clone()).generate(n, 1, 2).unwrap();
        let wiener = Wiener::new(field.clone());
        // the closed form and central differences give the same matrix
        let jac = full(&*wiener.linearize(&y, Some(sigma)).unwrap(), 16);
        let fd = FiniteDifferences::new(&wiener, &y, Some(sigma), 1e-2).unwrap();
        assert!(relative_error(fd.matrix(), &jac) < 1e-4);
        // likewise for an open field, whose eigenbasis is computed
        let open = Wiener::new(GaussianField::default());
        let jac_open = full(&*open.linearize(&y, Some(sigma)).unwrap(), 16);
        let fd = FiniteDifferences::new(&open, &y, Some(sigma), 1e-2).unwrap();
        assert!(relative_error(fd.matrix(), &jac_open) < 1e-4);
        assert!(relative_error(&jac_open, &jac) > 1e-2, "open ≠ periodic");
        let spec = analyze(&jac, n * n, n * n).unwrap();
        let mut gains = field.wiener_gain(n, n, sigma as f64);
        gains.sort_by(|a, b| b.total_cmp(a));
        for (k, (l, g)) in spec.eigenvalues.iter().zip(&gains).enumerate() {
            assert!((l - g).abs() < 1e-3, "eigenvalue {k}: {l} vs gain {g}");
        }
        assert!(spec.asymmetry < 1e-3);
        // each eigenvector lives in the Fourier modes whose gain is its eigenvalue
        let gain = field.wiener_gain(n, n, sigma as f64);
        for (k, u) in spec.eigenvectors.iter().enumerate() {
            let power = fourier::power(u, n, n);
            let total: f64 = power.iter().sum();
            let inside: f64 = power
                .iter()
                .zip(&gain)
                .filter(|(_, g)| (*g - spec.eigenvalues[k]).abs() < 1e-3)
                .map(|(p, _)| p)
                .sum();
            assert!(
                inside > 0.99 * total,
                "eigenvector {k}: {inside} of {total} in its eigenspace"
            );
        }
    }

    #[test]
    fn symmetric_product_is_half_the_sum() {
        // a non-symmetric linear "denoiser" through finite differences: f(y) = A y
        struct Shift;
        impl crate::denoise::Denoiser for Shift {
            fn denoise(
                &self,
                y: &Images,
                _: Option<f32>,
            ) -> Result<Images, crate::denoise::DenoiseError> {
                let d = y.dim();
                let out = (0..y.len())
                    .flat_map(|k| {
                        let img = y.image(k);
                        (0..d).map(move |i| img[(i + 1) % d])
                    })
                    .collect();
                Ok(Images::new(out, y.shape()))
            }
            fn name(&self) -> String {
                "shift".into()
            }
        }
        let y = Images::new((0..4).map(|v| v as f32).collect(), [1, 1, 2, 2]);
        let at = FiniteDifferences::new(&Shift, &y, None, 1e-2).unwrap();
        let jac = full(&at, 3);
        // J[i][i+1] = 1; (J + Jᵀ)e₀/2 = (e₁ + e₃)/2
        assert!((jac[1] - 1.0).abs() < 1e-4 && jac[0].abs() < 1e-4);
        let s = symmetric_product(&at, &[1.0, 0.0, 0.0, 0.0]);
        for (a, b) in s.iter().zip([0.0, 0.5, 0.0, 0.5]) {
            assert!((a - b).abs() < 1e-4, "{s:?}");
        }
        assert!(homogeneity_error(&jac, &y, at.denoised()) < 1e-4);
    }
}
