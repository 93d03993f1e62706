//! Matrix-free spectral estimates for images too large for a dense Jacobian: the top
//! eigenpairs of a symmetric operator by Lanczos iteration with full reorthogonalization, and
//! the trace by Hutchinson's estimator, both from products only.

use crate::rng::{stream, Purpose};
use faer::{Mat, Side};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// Eigenpairs in descending order of eigenvalue.
#[derive(Clone, Debug)]
pub struct Eigenpairs {
    /// Eigenvalues (Ritz values), descending.
    pub values: Vec<f64>,
    /// Orthonormal eigenvectors (Ritz vectors), same order.
    pub vectors: Vec<Vec<f32>>,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The `k` largest eigenpairs of the symmetric operator `apply` on ℝᴰ after `iterations`
/// Lanczos steps (at least k; more give more accurate pairs, 2k + 20 is a good start). The
/// starting vector comes from `seed`.
pub fn lanczos(
    mut apply: impl FnMut(&[f32]) -> Vec<f32>,
    d: usize,
    k: usize,
    iterations: usize,
    seed: u64,
) -> Eigenpairs {
    let m = iterations.max(k).min(d);
    let mut rng = stream(seed, Purpose::Probe, 3);
    let mut q: Vec<f64> = (0..d).map(|_| StandardNormal.sample(&mut rng)).collect();
    let n = dot(&q, &q).sqrt();
    q.iter_mut().for_each(|v| *v /= n);
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(m);
    let (mut alpha, mut beta) = (Vec::with_capacity(m), Vec::with_capacity(m));
    for j in 0..m {
        let qf: Vec<f32> = q.iter().map(|&v| v as f32).collect();
        let mut w: Vec<f64> = apply(&qf).into_iter().map(|v| v as f64).collect();
        let a = dot(&w, &q);
        alpha.push(a);
        basis.push(q.clone());
        // full reorthogonalization against every basis vector, twice
        for _ in 0..2 {
            for b in &basis {
                let c = dot(&w, b);
                w.iter_mut().zip(b).for_each(|(x, y)| *x -= c * y);
            }
        }
        let b = dot(&w, &w).sqrt();
        if j + 1 == m || b < 1e-10 {
            break;
        }
        beta.push(b);
        q = w.into_iter().map(|v| v / b).collect();
    }
    let m = alpha.len();
    let t = Mat::<f64>::from_fn(m, m, |i, j| {
        if i == j {
            alpha[i]
        } else if i + 1 == j {
            beta[i]
        } else if j + 1 == i {
            beta[j]
        } else {
            0.0
        }
    });
    let evd = t
        .self_adjoint_eigen(Side::Lower)
        .expect("tridiagonal eigendecomposition converges");
    let u = evd.U();
    let take = k.min(m);
    let values = (0..take)
        .map(|r| evd.S().column_vector()[m - 1 - r])
        .collect();
    let vectors = (0..take)
        .map(|r| {
            let col = m - 1 - r;
            (0..d)
                .map(|i| (0..m).map(|j| basis[j][i] * u[(j, col)]).sum::<f64>() as f32)
                .collect()
        })
        .collect();
    Eigenpairs { values, vectors }
}

/// A trace estimate with its standard error.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct TraceEstimate {
    /// Mean of vᵀJv over the probes.
    pub mean: f64,
    /// Standard error of the mean (sample standard deviation / √probes).
    pub std_error: f64,
    /// Number of probe vectors.
    pub probes: usize,
}

/// Hutchinson's estimator tr J ≈ mean of vᵀJv over Rademacher vectors v (probe p drawn from
/// stream (seed, Probe, p)). `vjp` maps a batch of vectors to their products vᵀJ.
pub fn hutchinson(
    mut vjp: impl FnMut(&[Vec<f32>]) -> Vec<Vec<f32>>,
    d: usize,
    probes: usize,
    seed: u64,
) -> TraceEstimate {
    let probes = probes.max(2);
    let vs: Vec<Vec<f32>> = (0..probes)
        .map(|p| {
            let mut rng = stream(seed, Purpose::Probe, 1000 + p as u64);
            (0..d)
                .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
                .collect()
        })
        .collect();
    let mut samples = Vec::with_capacity(probes);
    for chunk in vs.chunks(32) {
        for (v, vj) in chunk.iter().zip(vjp(chunk)) {
            samples.push(
                v.iter()
                    .zip(&vj)
                    .map(|(a, b)| (*a as f64) * (*b as f64))
                    .sum::<f64>(),
            );
        }
    }
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let var = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0);
    TraceEstimate {
        mean,
        std_error: (var / n).sqrt(),
        probes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::spectrum::symmetric_eigen;

    #[test]
    fn lanczos_finds_the_top_eigenvalues_of_a_dense_matrix() {
        let d = 60;
        let mut rng = stream(4, Purpose::Probe, 0);
        let a: Vec<f32> = (0..d * d)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        let (dense, _) = symmetric_eigen(&a, d).unwrap();
        let sym = |i: usize, j: usize| 0.5 * (a[i * d + j] + a[j * d + i]);
        let apply = |v: &[f32]| -> Vec<f32> {
            (0..d)
                .map(|i| (0..d).map(|j| sym(i, j) * v[j]).sum())
                .collect()
        };
        let got = lanczos(apply, d, 4, d, 1);
        for (g, e) in got.values.iter().zip(&dense) {
            assert!((g - e).abs() < 1e-4, "{g} vs {e}");
        }
    }

    #[test]
    fn hutchinson_is_unbiased_within_its_error() {
        let d = 50;
        let diag: Vec<f32> = (0..d).map(|i| i as f32 / 10.0).collect();
        let exact: f64 = diag.iter().map(|&v| v as f64).sum();
        // a non-diagonal symmetric matrix with that trace: D + 0.3·(shift + shiftᵀ)
        let vjp = |vs: &[Vec<f32>]| -> Vec<Vec<f32>> {
            vs.iter()
                .map(|v| {
                    (0..d)
                        .map(|i| diag[i] * v[i] + 0.3 * (v[(i + 1) % d] + v[(i + d - 1) % d]))
                        .collect()
                })
                .collect()
        };
        let est = hutchinson(vjp, d, 200, 3);
        assert!(
            (est.mean - exact).abs() < 3.0 * est.std_error,
            "{} ± {} vs {exact}",
            est.mean,
            est.std_error
        );
        assert!(est.std_error > 0.0);
    }
}
