//! The dense spectral analysis of a denoiser Jacobian J (D×D, small images): eigendecomposition
//! of its symmetric part, singular values, trace (effective dimensionality), asymmetry.
//!
//! Kadkhodaie et al. (2024, §3): for a bias-free network f(y) = J(y)·y and J is nearly
//! symmetric, so f(y) ≈ Σₖ λₖ⟨uₖ, y⟩uₖ: an adaptive shrinkage in the orthonormal basis {uₖ} of
//! J's eigenvectors (the geometry-adaptive harmonic basis), with shrinkage factors λₖ whose sum
//! tr J is the dimension of the subspace the denoiser effectively projects onto.

use faer::{Mat, Side};
use serde::{Deserialize, Serialize};

/// Errors of the decompositions.
#[derive(Debug, thiserror::Error)]
pub enum SpectrumError {
    /// faer did not converge.
    #[error("{0} did not converge")]
    NoConvergence(&'static str),
    /// A matrix is not D×D.
    #[error("expected a {d}×{d} matrix ({} values), got {got} values", d * d)]
    Shape {
        /// Expected side.
        d: usize,
        /// Values given.
        got: usize,
    },
}

/// The spectral summary of one Jacobian.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Spectrum {
    /// Eigenvalues of the symmetric part (J + Jᵀ)/2, in descending order.
    pub eigenvalues: Vec<f64>,
    /// The orthonormal eigenvectors of the first `top` eigenvalues, in the same order.
    #[serde(skip)]
    pub eigenvectors: Vec<Vec<f32>>,
    /// Singular values of J, descending.
    pub singular_values: Vec<f64>,
    /// tr J = Σ eigenvalues: the effective dimensionality.
    pub trace: f64,
    /// ‖J − Jᵀ‖_F / ‖J‖_F.
    pub asymmetry: f64,
}

fn check(jac: &[f32], d: usize) -> Result<(), SpectrumError> {
    if jac.len() != d * d {
        return Err(SpectrumError::Shape { d, got: jac.len() });
    }
    Ok(())
}

/// ‖J − Jᵀ‖_F / ‖J‖_F of a row-major D×D matrix.
pub fn asymmetry(jac: &[f32], d: usize) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for i in 0..d {
        for j in 0..d {
            let a = jac[i * d + j] as f64;
            num += (a - jac[j * d + i] as f64).powi(2);
            den += a * a;
        }
    }
    (num / den.max(f64::MIN_POSITIVE)).sqrt()
}

/// Eigenvalues (descending) and eigenvectors (columns, same order) of (J + Jᵀ)/2.
#[allow(non_snake_case)]
pub fn symmetric_eigen(jac: &[f32], d: usize) -> Result<(Vec<f64>, Mat<f64>), SpectrumError> {
    check(jac, d)?;
    let S = Mat::<f64>::from_fn(d, d, |i, j| {
        0.5 * (jac[i * d + j] as f64 + jac[j * d + i] as f64)
    });
    let evd = S
        .self_adjoint_eigen(Side::Lower)
        .map_err(|_| SpectrumError::NoConvergence("eigendecomposition"))?;
    // faer sorts ascending; we report descending
    let values: Vec<f64> = (0..d).rev().map(|i| evd.S().column_vector()[i]).collect();
    let U = evd.U();
    let vectors = Mat::<f64>::from_fn(d, d, |i, k| U[(i, d - 1 - k)]);
    Ok((values, vectors))
}

/// Singular values of J, descending.
#[allow(non_snake_case)]
pub fn singular_values(jac: &[f32], d: usize) -> Result<Vec<f64>, SpectrumError> {
    check(jac, d)?;
    let J = Mat::<f64>::from_fn(d, d, |i, j| jac[i * d + j] as f64);
    let s = J
        .singular_values()
        .map_err(|_| SpectrumError::NoConvergence("SVD"))?;
    Ok(s)
}

/// Eigenvalues, the top `top` eigenvectors, singular values, trace and asymmetry of J.
pub fn analyze(jac: &[f32], d: usize, top: usize) -> Result<Spectrum, SpectrumError> {
    let (eigenvalues, vectors) = symmetric_eigen(jac, d)?;
    let eigenvectors = (0..top.min(d))
        .map(|k| (0..d).map(|i| vectors[(i, k)] as f32).collect())
        .collect();
    let trace = (0..d).map(|i| jac[i * d + i] as f64).sum();
    Ok(Spectrum {
        eigenvalues,
        eigenvectors,
        singular_values: singular_values(jac, d)?,
        trace,
        asymmetry: asymmetry(jac, d),
    })
}

/// Cosines of the principal angles between the spans of two orthonormal families (the singular
/// values of UₐᵀU_b), descending: 1 where the subspaces share a direction, 0 where orthogonal.
#[allow(non_snake_case)]
pub fn principal_cosines(a: &[Vec<f32>], b: &[Vec<f32>]) -> Result<Vec<f64>, SpectrumError> {
    let M = Mat::<f64>::from_fn(a.len(), b.len(), |i, j| {
        a[i].iter()
            .zip(&b[j])
            .map(|(x, y)| (*x as f64) * (*y as f64))
            .sum()
    });
    M.singular_values()
        .map_err(|_| SpectrumError::NoConvergence("SVD"))
        .map(|s| s.into_iter().map(|v| v.min(1.0)).collect())
}

/// Projection of `y` onto the span of orthonormal `vectors`: Σₖ ⟨uₖ, y⟩ uₖ.
pub fn project(vectors: &[Vec<f32>], y: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f64; y.len()];
    for u in vectors {
        let c: f64 = u
            .iter()
            .zip(y)
            .map(|(a, b)| (*a as f64) * (*b as f64))
            .sum();
        out.iter_mut().zip(u).for_each(|(o, v)| *o += c * *v as f64);
    }
    out.into_iter().map(|v| v as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Purpose};
    use rand_distr::{Distribution, StandardNormal};

    fn random_matrix(d: usize, seed: u64) -> Vec<f32> {
        let mut rng = stream(seed, Purpose::Probe, 0);
        (0..d * d)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect()
    }

    #[test]
    fn eigenvectors_reconstruct_the_symmetric_part_and_are_orthonormal() {
        let d = 12;
        let jac = random_matrix(d, 1);
        let (vals, vecs) = symmetric_eigen(&jac, d).unwrap();
        assert!(vals.windows(2).all(|w| w[0] >= w[1]), "not descending");
        for i in 0..d {
            for j in 0..d {
                let usu: f64 = (0..d).map(|k| vecs[(i, k)] * vals[k] * vecs[(j, k)]).sum();
                let s = 0.5 * (jac[i * d + j] as f64 + jac[j * d + i] as f64);
                assert!((usu - s).abs() < 1e-9 * d as f64, "({i},{j}): {usu} vs {s}");
                let utu: f64 = (0..d).map(|k| vecs[(k, i)] * vecs[(k, j)]).sum();
                assert!((utu - f64::from(u8::from(i == j))).abs() < 1e-9, "UᵀU ≠ I");
            }
        }
        let spec = analyze(&jac, d, 3).unwrap();
        let tr: f64 = vals.iter().sum();
        assert!((spec.trace - tr).abs() < 1e-6 * d as f64);
        assert_eq!(spec.eigenvectors.len(), 3);
        assert!(
            spec.asymmetry > 0.5,
            "a random matrix is far from symmetric"
        );
    }

    #[test]
    fn principal_cosines_of_nested_and_orthogonal_spans() {
        let e = |i: usize| {
            let mut v = vec![0.0f32; 4];
            v[i] = 1.0;
            v
        };
        let c = principal_cosines(&[e(0), e(1)], &[e(1), e(2)]).unwrap();
        assert!((c[0] - 1.0).abs() < 1e-12 && c[1].abs() < 1e-12, "{c:?}");
        let p = project(&[e(0), e(2)], &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(p, vec![1.0, 0.0, 3.0, 0.0]);
    }
}
