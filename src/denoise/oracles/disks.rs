//! The MMSE denoiser of the disk family ([`Disks`]): the posterior mean
//! E[x(θ) | y] over the five parameters θ = (cx, cy, r, fg, bg), uniform prior on
//! [`Disks::bounds`], computed by self-normalised importance sampling.
//!
//! The posterior concentrates fast as σ falls (1024 pixels pin five numbers), so sampling from
//! the prior would waste almost every draw. The proposal is a defensive mixture (Hesterberg
//! 1995) of three parts: a Gaussian at the maximum-likelihood θ̂ with the Laplace covariance
//! σ²(JᵀJ)⁻¹ inflated by κ (where the posterior is nearly Gaussian); the geometry from the prior
//! with the intensities from their exact conditional Gaussian given it (a disk whose contrast
//! is below the noise, whose geometry is barely identified); and the prior itself. θ̂ comes from
//! a grid over (cx, cy, r) with the intensities fitted in closed form, refined by
//! Levenberg–Marquardt.
//!
//! Accuracy is measured, not assumed: per image, the effective sample size and the delta-method
//! Monte-Carlo variance of the estimate, Σwᵢ²‖x(θᵢ) − x̂‖²/(Σwᵢ)² ([`Accuracy`]).
//! At small σ the posterior is nearly Gaussian and the estimate tends to y projected onto the
//! manifold's tangent space: a total squared error of 5σ².

use crate::data::synthetic::{Disk, Disks};
use crate::data::Images;
use crate::denoise::{DenoiseError, Denoiser};
use crate::rng::{content_key, derive, stream, Purpose};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The disk family's MMSE denoiser (needs σ).
#[derive(Clone, Debug)]
pub struct DiskOracle {
    /// Importance samples per image.
    pub samples: usize,
    /// Seed of the importance samples (each image's draws are keyed by its pixels, so the same
    /// y gets the same estimate wherever it sits in a batch).
    pub seed: u64,
}

/// How well the importance sampler did on a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Smallest effective sample size (Σw)²/Σw² over the images.
    pub min_ess: f64,
    /// Mean effective sample size.
    pub mean_ess: f64,
    /// Monte-Carlo variance of the estimate per pixel, averaged over images (compare with the
    /// oracle's MSE: the estimate's own error is this much of it).
    pub mc_variance: f64,
}

const PROPOSAL_INFLATION: f64 = 1.5;

fn residual_sq(y: &[f32], x: &[f32]) -> f64 {
    y.iter()
        .zip(x)
        .map(|(a, b)| {
            let d = (*a - *b) as f64;
            d * d
        })
        .sum()
}

fn clamp_to(bounds: &[[f64; 2]; 5], mut t: [f64; 5]) -> [f64; 5] {
    for (v, [lo, hi]) in t.iter_mut().zip(bounds) {
        *v = v.clamp(*lo, *hi);
    }
    t
}

/// Cholesky factor L (lower, row-major) of a symmetric positive-definite 5×5 matrix.
fn cholesky(a: &[[f64; 5]; 5]) -> Option<[[f64; 5]; 5]> {
    let mut l = [[0.0; 5]; 5];
    for i in 0..5 {
        for j in 0..=i {
            let s: f64 = a[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>();
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    Some(l)
}

/// Solves L Lᵀ x = b.
fn chol_solve(l: &[[f64; 5]; 5], b: [f64; 5]) -> [f64; 5] {
    let mut z = [0.0; 5];
    for i in 0..5 {
        z[i] = (b[i] - (0..i).map(|k| l[i][k] * z[k]).sum::<f64>()) / l[i][i];
    }
    let mut x = [0.0; 5];
    for i in (0..5).rev() {
        x[i] = (z[i] - (i + 1..5).map(|k| l[k][i] * x[k]).sum::<f64>()) / l[i][i];
    }
    x
}

/// The maximum-likelihood disk: grid over the geometry with closed-form intensities, then
/// Levenberg–Marquardt on all five parameters within the prior's box. Returns θ̂ and JᵀJ at θ̂.
fn fit(y: &[f32], n: usize) -> ([f64; 5], [[f64; 5]; 5]) {
    let bounds = Disks::bounds(n);
    let d = n * n;
    let (sy, syy): (f64, f64) = y.iter().fold((0.0, 0.0), |(a, b), v| {
        (a + *v as f64, b + (*v as f64).powi(2))
    });
    let mut best = (f64::INFINITY, [0.0; 5]);
    let (gc, gr) = (16, 12);
    let mut m = vec![0.0f64; d];
    for i in 0..gc {
        for j in 0..gc {
            for k in 0..gr {
                let at = |b: [f64; 2], t: usize, g: usize| {
                    b[0] + (b[1] - b[0]) * (t as f64 + 0.5) / g as f64
                };
                let (cx, cy, r) = (
                    at(bounds[0], i, gc),
                    at(bounds[1], j, gc),
                    at(bounds[2], k, gr),
                );
                let (mut s1, mut s2, mut sm) = (0.0, 0.0, 0.0);
                for py in 0..n {
                    for px in 0..n {
                        let v = Disks::coverage(cx, cy, r, px, py);
                        m[py * n + px] = v;
                        s1 += v;
                        s2 += v * v;
                        sm += v * y[py * n + px] as f64;
                    }
                }
                // y ≈ bg + c·m by least squares, then clamped to the prior's intensities
                let det = d as f64 * s2 - s1 * s1;
                if det <= 1e-9 {
                    continue;
                }
                let c = (d as f64 * sm - s1 * sy) / det;
                let bg = ((sy - c * s1) / d as f64).clamp(0.0, 1.0);
                let fg = (bg + c).clamp(0.0, 1.0);
                let c = fg - bg;
                let rss = syy - 2.0 * bg * sy - 2.0 * c * sm
                    + d as f64 * bg * bg
                    + 2.0 * bg * c * s1
                    + c * c * s2;
                if rss < best.0 {
                    best = (rss, [cx, cy, r, fg, bg]);
                }
            }
        }
    }
    let steps = [1e-3, 1e-3, 1e-3, 1e-4, 1e-4];
    let jacobian = |t: [f64; 5]| -> Vec<[f64; 5]> {
        let mut cols = vec![[0.0; 5]; d];
        for (p, h) in steps.iter().enumerate() {
            let (mut a, mut b) = (t, t);
            a[p] += h;
            b[p] -= h;
            let (xa, xb) = (
                Disks::render(n, Disk::from_array(a)),
                Disks::render(n, Disk::from_array(b)),
            );
            for (i, col) in cols.iter_mut().enumerate() {
                col[p] = (xa[i] - xb[i]) as f64 / (2.0 * h);
            }
        }
        cols
    };
    let normal = |rows: &[[f64; 5]]| {
        let mut jtj = [[0.0; 5]; 5];
        for row in rows {
            for a in 0..5 {
                for b in 0..5 {
                    jtj[a][b] += row[a] * row[b];
                }
            }
        }
        jtj
    };
    let (mut theta, mut rss) = (best.1, best.0);
    let mut lambda = 1e-3;
    for _ in 0..40 {
        let x = Disks::render(n, Disk::from_array(theta));
        let rows = jacobian(theta);
        let jtj = normal(&rows);
        let mut g = [0.0; 5];
        for (i, row) in rows.iter().enumerate() {
            let e = (y[i] - x[i]) as f64;
            for p in 0..5 {
                g[p] += row[p] * e;
            }
        }
        let mut damped = jtj;
        for p in 0..5 {
            damped[p][p] += lambda * (jtj[p][p] + 1e-9);
        }
        let Some(l) = cholesky(&damped) else { break };
        let step = chol_solve(&l, g);
        let mut next = theta;
        for p in 0..5 {
            next[p] += step[p];
        }
        let next = clamp_to(&bounds, next);
        let next_rss = residual_sq(y, &Disks::render(n, Disk::from_array(next)));
        if next_rss < rss {
            let gain = rss - next_rss;
            (theta, rss) = (next, next_rss);
            lambda = (lambda * 0.3).max(1e-9);
            if gain < 1e-12 * (1.0 + rss) {
                break;
            }
        } else {
            lambda *= 10.0;
            if lambda > 1e8 {
                break;
            }
        }
    }
    (theta, normal(&jacobian(theta)))
}

/// The intensities' least-squares fit for a given geometry: y ≈ bg + c·m (m the disk's
/// coverage, c = fg − bg), their Gaussian likelihood's mean and the Cholesky factor of its
/// covariance σ²(XᵀX)⁻¹ (X = [1, m]); `None` when the mask is degenerate.
struct Intensities {
    mean: [f64; 2],
    chol: [[f64; 2]; 2],
}

impl Intensities {
    fn fit(y: &[f32], n: usize, geometry: [f64; 3], sigma: f64) -> Option<Self> {
        let (mut s1, mut s2, mut sm, mut sy) = (0.0, 0.0, 0.0, 0.0);
        for py in 0..n {
            for px in 0..n {
                let m = Disks::coverage(geometry[0], geometry[1], geometry[2], px, py);
                let v = y[py * n + px] as f64;
                s1 += m;
                s2 += m * m;
                sm += m * v;
                sy += v;
            }
        }
        let d = (n * n) as f64;
        let det = d * s2 - s1 * s1;
        if det <= 1e-9 * d * d {
            return None;
        }
        let c = (d * sm - s1 * sy) / det;
        let bg = (sy - c * s1) / d;
        // covariance of (bg, c): σ²/det · [[s2, −s1], [−s1, d]]
        let k = sigma * sigma / det;
        let (a, b, e) = (k * s2, -k * s1, k * d);
        let l00 = a.sqrt();
        let l10 = b / l00;
        let l11 = (e - l10 * l10).max(1e-300).sqrt();
        Some(Self {
            mean: [bg, c],
            chol: [[l00, 0.0], [l10, l11]],
        })
    }

    /// log N((bg, c); mean, κ²·cov).
    fn log_density(&self, bg: f64, c: f64, kappa: f64) -> f64 {
        let u0 = (bg - self.mean[0]) / self.chol[0][0];
        let u1 = (c - self.mean[1] - self.chol[1][0] * u0) / self.chol[1][1];
        -(2.0 * std::f64::consts::PI).ln()
            - (self.chol[0][0] * self.chol[1][1]).ln()
            - 2.0 * kappa.ln()
            - 0.5 * (u0 * u0 + u1 * u1) / (kappa * kappa)
    }
}

/// The proposal: a mixture of (a) the Laplace approximation at θ̂, N(θ̂, κ²·C), C = L·Lᵀ;
/// (b) geometry from the prior with the intensities from their exact conditional Gaussian
/// given it (what the posterior is when the disk's contrast is below the noise and its
/// geometry is barely identified); (c) the prior.
struct Proposal {
    mean: [f64; 5],
    chol: [[f64; 5]; 5],
    bounds: [[f64; 2]; 5],
    log_box: f64,
    log_geometry_box: f64,
}

const MIXTURE: [f64; 3] = [0.6, 0.3, 0.1];
const CONDITIONAL_INFLATION: f64 = 1.2;

fn log_sum_exp(v: &[f64]) -> f64 {
    let top = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if top == f64::NEG_INFINITY {
        return top;
    }
    top + v.iter().map(|x| (x - top).exp()).sum::<f64>().ln()
}

impl Proposal {
    fn new(mean: [f64; 5], chol: [[f64; 5]; 5], n: usize) -> Self {
        let bounds = Disks::bounds(n);
        let width = |p: usize| (bounds[p][1] - bounds[p][0]).ln();
        Self {
            mean,
            chol,
            bounds,
            log_box: -(0..5).map(width).sum::<f64>(),
            log_geometry_box: -(0..3).map(width).sum::<f64>(),
        }
    }

    fn draw(&self, y: &[f32], n: usize, sigma: f64, rng: &mut impl Rng) -> [f64; 5] {
        let b = &self.bounds;
        let u: f64 = rng.random();
        if u < MIXTURE[0] {
            let z: [f64; 5] = std::array::from_fn(|_| StandardNormal.sample(rng));
            return std::array::from_fn(|i| {
                self.mean[i]
                    + PROPOSAL_INFLATION * (0..=i).map(|k| self.chol[i][k] * z[k]).sum::<f64>()
            });
        }
        let geometry: [f64; 3] = std::array::from_fn(|p| rng.random_range(b[p][0]..b[p][1]));
        if u < MIXTURE[0] + MIXTURE[1] {
            if let Some(fit) = Intensities::fit(y, n, geometry, sigma) {
                let z: [f64; 2] = std::array::from_fn(|_| StandardNormal.sample(rng));
                let k = CONDITIONAL_INFLATION;
                let bg = fit.mean[0] + k * fit.chol[0][0] * z[0];
                let c = fit.mean[1] + k * (fit.chol[1][0] * z[0] + fit.chol[1][1] * z[1]);
                return [geometry[0], geometry[1], geometry[2], bg + c, bg];
            }
        }
        let fg = rng.random_range(b[3][0]..b[3][1]);
        let bg = rng.random_range(b[4][0]..b[4][1]);
        [geometry[0], geometry[1], geometry[2], fg, bg]
    }

    /// log q(θ) of the mixture, for θ inside the prior's box.
    fn log_density(&self, t: &[f64; 5], y: &[f32], n: usize, sigma: f64) -> f64 {
        let mut u = [0.0; 5];
        for i in 0..5 {
            let r = t[i] - self.mean[i] - (0..i).map(|k| self.chol[i][k] * u[k]).sum::<f64>();
            u[i] = r / self.chol[i][i];
        }
        let quad: f64 = u.iter().map(|v| v * v).sum::<f64>() / PROPOSAL_INFLATION.powi(2);
        let log_det: f64 =
            (0..5).map(|i| self.chol[i][i].ln()).sum::<f64>() + 5.0 * PROPOSAL_INFLATION.ln();
        let laplace = -2.5 * (2.0 * std::f64::consts::PI).ln() - log_det - 0.5 * quad;
        let conditional = Intensities::fit(y, n, [t[0], t[1], t[2]], sigma)
            .map_or(f64::NEG_INFINITY, |fit| {
                self.log_geometry_box + fit.log_density(t[4], t[3] - t[4], CONDITIONAL_INFLATION)
            });
        log_sum_exp(&[
            MIXTURE[0].ln() + laplace,
            MIXTURE[1].ln() + conditional,
            MIXTURE[2].ln() + self.log_box,
        ])
    }
}

/// One image: the posterior mean and (ESS, MC variance per pixel).
fn posterior_mean(
    y: &[f32],
    n: usize,
    sigma: f64,
    samples: usize,
    seed: u64,
) -> (Vec<f32>, f64, f64) {
    let d = n * n;
    let bounds = Disks::bounds(n);
    let (theta, jtj) = fit(y, n);
    // Laplace precision, floored by the prior's width so flat directions stay proper
    let mut precision = [[0.0; 5]; 5];
    for a in 0..5 {
        for b in 0..5 {
            precision[a][b] = jtj[a][b] / (sigma * sigma);
        }
        let width = bounds[a][1] - bounds[a][0];
        precision[a][a] += 12.0 / (width * width);
    }
    let laplace = inverse(&precision).expect("a floored precision is positive definite");
    let proposal = Proposal::new(
        theta,
        cholesky(&laplace).expect("the inverse of a positive-definite matrix is one"),
        n,
    );
    let mut rng = stream(seed, Purpose::Oracle, 0);
    let mut images = vec![0.0f32; samples * d];
    let mut log_w = vec![f64::NEG_INFINITY; samples];
    for s in 0..samples {
        let t = proposal.draw(y, n, sigma, &mut rng);
        if !t
            .iter()
            .zip(&bounds)
            .all(|(v, [lo, hi])| v >= lo && v <= hi)
        {
            continue; // outside the prior: weight 0
        }
        let x = &mut images[s * d..(s + 1) * d];
        Disks::render_into(n, Disk::from_array(t), x);
        let log_lik = -residual_sq(y, x) / (2.0 * sigma * sigma);
        log_w[s] = proposal.log_box + log_lik - proposal.log_density(&t, y, n, sigma);
    }
    let top = log_w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = log_w.iter().map(|l| (l - top).exp()).collect();
    let total: f64 = w.iter().sum();
    let w: Vec<f64> = w.into_iter().map(|v| v / total).collect();
    let mut mean = vec![0.0f64; d];
    for (s, ws) in w.iter().enumerate() {
        if *ws > 0.0 {
            for (m, v) in mean.iter_mut().zip(&images[s * d..(s + 1) * d]) {
                *m += ws * *v as f64;
            }
        }
    }
    let ess = 1.0 / w.iter().map(|v| v * v).sum::<f64>();
    let mc: f64 = w
        .iter()
        .enumerate()
        .filter(|(_, ws)| **ws > 0.0)
        .map(|(s, ws)| {
            let dev: f64 = images[s * d..(s + 1) * d]
                .iter()
                .zip(&mean)
                .map(|(v, m)| (*v as f64 - m).powi(2))
                .sum();
            ws * ws * dev
        })
        .sum::<f64>()
        / d as f64;
    (mean.into_iter().map(|v| v as f32).collect(), ess, mc)
}

fn inverse(a: &[[f64; 5]; 5]) -> Option<[[f64; 5]; 5]> {
    let l = cholesky(a)?;
    let mut inv = [[0.0; 5]; 5];
    for j in 0..5 {
        let col = chol_solve(&l, std::array::from_fn(|i| f64::from(u8::from(i == j))));
        for (row, v) in inv.iter_mut().zip(col) {
            row[j] = v;
        }
    }
    Some(inv)
}

impl DiskOracle {
    /// The oracle with `samples` importance samples per image.
    pub fn new(samples: usize, seed: u64) -> Self {
        Self { samples, seed }
    }

    /// The posterior means of a batch of one-channel square images, and how accurate they are.
    pub fn denoise_with_accuracy(
        &self,
        y: &Images,
        sigma: f32,
    ) -> Result<(Images, Accuracy), DenoiseError> {
        let [_, c, h, w] = y.shape();
        if c != 1 || h != w {
            return Err(DenoiseError::Shape {
                expected: "1 channel, square".into(),
                got: y.image_shape(),
            });
        }
        let per_image: Vec<(Vec<f32>, f64, f64)> = (0..y.len())
            .into_par_iter()
            .map(|i| {
                let img = y.image(i);
                let seed = derive(self.seed, Purpose::Oracle, &[content_key(img)]);
                posterior_mean(img, h, sigma as f64, self.samples, seed)
            })
            .collect();
        let k = per_image.len().max(1) as f64;
        let accuracy = Accuracy {
            min_ess: per_image.iter().map(|p| p.1).fold(f64::INFINITY, f64::min),
            mean_ess: per_image.iter().map(|p| p.1).sum::<f64>() / k,
            mc_variance: per_image.iter().map(|p| p.2).sum::<f64>() / k,
        };
        let data = per_image.into_iter().flat_map(|p| p.0).collect();
        Ok((Images::new(data, y.shape()), accuracy))
    }
}

impl Denoiser for DiskOracle {
    fn denoise(&self, y: &Images, sigma: Option<f32>) -> Result<Images, DenoiseError> {
        let sigma = sigma.ok_or(DenoiseError::NeedsSigma("the disk oracle"))?;
        Ok(self.denoise_with_accuracy(y, sigma)?.0)
    }

    fn name(&self) -> String {
        format!("disk MMSE ({} importance samples)", self.samples)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::metrics::{mse, noisy};
    use crate::data::synthetic::Family;

    #[test]
    fn the_fit_recovers_a_disk_from_a_clean_image() {
        let n = 16;
        let truth = Disk {
            cx: 7.3,
            cy: 8.9,
            r: 3.7,
            fg: 0.8,
            bg: 0.2,
        };
        let (theta, _) = fit(&Disks::render(n, truth), n);
        for (a, b) in theta.iter().zip(truth.to_array()) {
            assert!((a - b).abs() < 1e-3, "{theta:?} vs {truth:?}");
        }
    }

    /// At small σ the posterior mean keeps only the noise along the manifold's 5-dimensional
    /// tangent space: a total squared error of 5σ², whatever D is.
    #[test]
    fn the_oracle_error_tends_to_five_sigma_squared() {
        let n = 16;
        // ‖x̂ − x‖²/σ² is about χ²₅ per image (mean 5, sd √10): 64 images put the mean's sd
        // at 0.4
        let x = Family::Disks(Disks {}).generate(n, 64, 5).unwrap();
        let oracle = DiskOracle::new(1000, 0);
        let sigma = 0.001f32;
        let y = noisy(&x, sigma, 1);
        let (out, acc) = oracle.denoise_with_accuracy(&y, sigma).unwrap();
        let total = mse(out.as_slice(), x.as_slice()) * (n * n) as f64;
        let ratio = total / (sigma as f64).powi(2);
        assert!((4.0..6.0).contains(&ratio), "‖x̂ − x‖² = {ratio} σ²");
        assert!(acc.min_ess > 50.0, "{acc:?}");
        // and at a large σ it is still far better than the noisy input
        let sigma = 0.3f32;
        let x = x.take(8);
        let y = noisy(&x, sigma, 1);
        let out = oracle.denoise(&y, Some(sigma)).unwrap();
        let ours = mse(out.as_slice(), x.as_slice());
        assert!(ours < 0.05 * (sigma as f64).powi(2), "{ours}");
    }
}
