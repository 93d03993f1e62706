//! Stationary Gaussian fields with power spectrum ∝ 1/|f|^γ, and their exact MMSE denoiser (the
//! Wiener filter) in the eigenbasis of the field's covariance.
//!
//! Two boundaries. A *periodic* field is one period of a field on the torus: opposite edges are
//! correlated, the covariance is circulant and the DFT diagonalizes it. An *open* field is the
//! top-left window of a periodic field of twice the size: nothing wraps around, as in a
//! photograph. A convolutional network with zero padding cannot use the wrap-around
//! correlations of a periodic field, which its Wiener filter uses at every edge (measured: a
//! network's excess over the periodic optimum is 3–4× larger in the outermost ring of pixels
//! than inside); on an open field the optimum sees at an edge what the network sees. Its
//! covariance is dense (block Toeplitz) and is diagonalized numerically, once per image size
//! (faer; cached for the process).

use super::Images;
use crate::fourier::{self, Direction};
use crate::rng::{stream, Purpose};
use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::evd;
use faer::{Mat, Par};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use rustfft::num_complex::Complex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

/// How a field meets the image's edges.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Boundary {
    /// The image is one period of the field: the Wiener filter's eigenvectors are Fourier modes.
    Periodic,
    /// The image is a window of a periodic field of twice its size: no wrap-around.
    #[default]
    Open,
}

impl Boundary {
    /// Fields recorded before the boundary was a parameter were periodic.
    fn recorded_before() -> Self {
        Self::Periodic
    }
}

/// Stationary Gaussian field x = mean + F⁻¹(√p ⊙ F w), w white, on a periodic grid (the image,
/// or for an open field a grid of twice its size, cropped): p(f) = A/|f|^γ for f ≠ 0, p(0) = 0
/// and A set so that the pixel standard deviation is `sd`. Values are not clipped to [0, 1]
/// (clipping would break Gaussianity and Wiener optimality); with the defaults, pixels fall
/// outside [0, 1] about 0.1% of the time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GaussianField {
    /// Spectral exponent γ (2 is the classical natural-image value).
    pub gamma: f64,
    /// Mean intensity.
    pub mean: f64,
    /// Pixel standard deviation.
    pub sd: f64,
    /// Periodic or open edges.
    #[serde(default = "Boundary::recorded_before")]
    pub boundary: Boundary,
}

impl Default for GaussianField {
    fn default() -> Self {
        Self {
            gamma: 2.0,
            mean: 0.5,
            sd: 0.15,
            boundary: Boundary::default(),
        }
    }
}

impl GaussianField {
    /// The largest side of an open-edged field whose exact Wiener filter we compute: its dense
    /// D×D covariance (D = side²) is eigendecomposed on one core (see `window_covariance`):
    /// 0.2 s at 32×32, 3 s at 48×48, 18 s and 130 MB at 64×64 here, and the cost grows as D³
    /// (about a minute at 80×80, hours at 128×128). Periodic fields have no limit.
    pub const MAX_OPEN_SIDE: usize = 96;

    /// Whether the exact Wiener filter of this field on `h × w` images is within reach (see
    /// [`GaussianField::MAX_OPEN_SIDE`]).
    pub fn exact_optimum_within_reach(&self, h: usize, w: usize) -> bool {
        self.boundary == Boundary::Periodic || h.max(w) <= Self::MAX_OPEN_SIDE
    }

    /// The same field with periodic edges (its Wiener filter is a Fourier multiplier).
    pub fn periodic(self) -> Self {
        Self {
            boundary: Boundary::Periodic,
            ..self
        }
    }

    /// Spectrum `p[k]` per DFT coefficient (row-major `h × w`) of the periodic field on an
    /// `h × w` torus, in the units of [`fourier::filter`] gains: the eigenvalues of its
    /// covariance.
    pub fn spectrum(&self, h: usize, w: usize) -> Vec<f64> {
        let mut p: Vec<f64> = (0..h * w)
            .map(|i| {
                let f = fourier::radial_freq(i / w, i % w, h, w);
                if f == 0.0 {
                    0.0
                } else {
                    f.powf(-self.gamma)
                }
            })
            .collect();
        let mean: f64 = p.iter().sum::<f64>() / (h * w) as f64;
        let a = self.sd * self.sd / mean;
        p.iter_mut().for_each(|v| *v *= a);
        p
    }

    /// The periodic grid the field is drawn on for an `h × w` image.
    fn grid(&self, h: usize, w: usize) -> [usize; 2] {
        match self.boundary {
            Boundary::Periodic => [h, w],
            Boundary::Open => [2 * h, 2 * w],
        }
    }

    /// The covariance of the field on an `h × w` image, in its eigenbasis.
    pub fn covariance(&self, h: usize, w: usize) -> Arc<Covariance> {
        match self.boundary {
            Boundary::Periodic => Arc::new(Covariance {
                h,
                w,
                variances: self.spectrum(h, w),
                basis: Basis::Fourier,
            }),
            Boundary::Open => {
                type Key = (u64, u64, usize, usize);
                static CACHE: LazyLock<Mutex<HashMap<Key, Arc<Covariance>>>> =
                    LazyLock::new(Default::default);
                let key = (self.gamma.to_bits(), self.sd.to_bits(), h, w);
                // computed under the lock: images denoised in parallel wait for one
                // eigendecomposition instead of each running their own
                let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
                cache
                    .entry(key)
                    .or_insert_with(|| Arc::new(self.window_covariance(h, w)))
                    .clone()
            }
        }
    }

    /// The covariance of the pixels of an `h × w` image as a dense matrix (row-major pixel
    /// order): C[a, b] = c(a − b), with c the autocovariance F⁻¹ p of the periodic grid the
    /// field is drawn on (the image itself, or for open edges the grid of twice its size).
    pub fn dense_covariance(&self, h: usize, w: usize) -> Mat<f64> {
        let [gh, gw] = self.grid(h, w);
        let mut auto: Vec<Complex<f64>> = self
            .spectrum(gh, gw)
            .into_iter()
            .map(|p| Complex::new(p, 0.0))
            .collect();
        fourier::fft2(&mut auto, gh, gw, Direction::Inverse);
        Mat::<f64>::from_fn(h * w, h * w, |a, b| {
            let dy = (a / w + gh - b / w) % gh;
            let dx = (a % w + gw - b % w) % gw;
            auto[dy * gw + dx].re
        })
    }

    /// The dense covariance of an `h × w` window of the periodic field on the doubled grid:
    /// C[a, b] = c(a − b), with c the grid's autocovariance F⁻¹ p, then eigendecomposed.
    fn window_covariance(&self, h: usize, w: usize) -> Covariance {
        let d = h * w;
        let c = self.dense_covariance(h, w);
        // Sequential on purpose: this runs under the cache's lock, often on a rayon worker while
        // the pool's other workers wait for that lock; a parallel decomposition would queue
        // work for them that they can never pick up (it deadlocked the tests).
        let (mut s, mut u) = (Diag::<f64>::zeros(d), Mat::<f64>::zeros(d, d));
        let params = Default::default();
        let scratch = evd::self_adjoint_evd_scratch::<f64>(
            d,
            evd::ComputeEigenvectors::Yes,
            Par::Seq,
            params,
        );
        evd::self_adjoint_evd(
            c.as_ref(),
            s.as_mut(),
            Some(u.as_mut()),
            Par::Seq,
            MemStack::new(&mut MemBuffer::new(scratch)),
            params,
        )
        .expect("the eigendecomposition of a symmetric covariance converges");
        // faer sorts ascending; keep that order (any order is an eigenbasis), clamp rounding
        let variances = s.column_vector().iter().map(|v| v.max(0.0)).collect();
        Covariance {
            h,
            w,
            variances,
            basis: Basis::Dense(u),
        }
    }

    /// The exact MMSE (Wiener) denoiser of this field at noise level σ, applied to one
    /// `h × w` image: mean + C (C + σ²)⁻¹ (y − mean).
    pub fn wiener(&self, y: &[f32], h: usize, w: usize, sigma: f64) -> Vec<f32> {
        let cov = self.covariance(h, w);
        let centred: Vec<f32> = y.iter().map(|&v| v - self.mean as f32).collect();
        cov.filter(&centred, &cov.wiener_gain(sigma))
            .into_iter()
            .map(|v| v + self.mean as f32)
            .collect()
    }

    /// The maximum-likelihood noise level of an `h × w` image under y = x + σz, x drawn from this
    /// field: minimizes Σₖ Pₖ/(pₖ + σ²) + ln(pₖ + σ²) over σ, Pₖ the power of y − mean along
    /// the covariance's k-th eigenvector and pₖ its variance. This is what makes the Wiener
    /// filter blind, like a trained network.
    pub fn estimate_sigma(&self, y: &[f32], h: usize, w: usize) -> f64 {
        let (cov, power) = self.centred_power(y, h, w);
        let nll = |t: f64| neg_log_likelihood(&power, &cov.variances, t.exp());
        // golden-section search on t = ln σ² (the objective is unimodal in practice)
        let (mut a, mut b) = ((1e-12f64).ln(), (100.0f64).ln());
        let g = (5f64.sqrt() - 1.0) / 2.0;
        let (mut c, mut d) = (b - g * (b - a), a + g * (b - a));
        let (mut fc, mut fd) = (nll(c), nll(d));
        for _ in 0..80 {
            if fc < fd {
                (b, d, fd) = (d, c, fc);
                c = b - g * (b - a);
                fc = nll(c);
            } else {
                (a, c, fc) = (c, d, fd);
                d = a + g * (b - a);
                fd = nll(d);
            }
        }
        (0.5 * (a + b)).exp().sqrt()
    }

    /// The posterior mean E[x | y] of one `h × w` image when how it was made is itself unknown:
    /// Σₕ P(h | y) · E[x | y, h] over the `hypotheses` h, each weighted by its prior mass times
    /// the likelihood of y. With every scale 1 and masses on noise levels, the exact MMSE
    /// denoiser for noise drawn from that prior: the best a blind denoiser fitted to it can do.
    /// With a scale-invariant prior over scales as well, the best *homogeneous* one
    /// (f(a·y) = a·f(y), as a bias-free network is) — see [`Hypothesis`].
    pub fn posterior_mean(
        &self,
        y: &[f32],
        h: usize,
        w: usize,
        hypotheses: &[Hypothesis],
    ) -> Vec<f32> {
        let cov = self.covariance(h, w);
        let m = vec![self.mean as f32; y.len()];
        // the power of y − a·m along each direction is yy − 2a·ym + a²·mm
        let (yy, ym, mm) = (
            cov.cross_power(y, y),
            cov.cross_power(y, &m),
            cov.cross_power(&m, &m),
        );
        // −2 log-likelihood at (a, σ): Σₖ (yy − 2a·ym + a²·mm)/(a²vₖ) + ln(a²vₖ), vₖ = pₖ + σ²,
        // from four sums over k that depend on σ alone
        let mut by_sigma: HashMap<u64, [f64; 4]> = HashMap::new();
        let nll: Vec<f64> = hypotheses
            .iter()
            .map(|hyp| {
                let [syy, sym, smm, sln] =
                    *by_sigma.entry(hyp.sigma.to_bits()).or_insert_with(|| {
                        let s2 = hyp.sigma * hyp.sigma;
                        let mut sums = [0.0; 4];
                        for k in 0..yy.len() {
                            let v = (cov.variances[k] + s2).max(f64::MIN_POSITIVE);
                            sums[0] += yy[k] / v;
                            sums[1] += ym[k] / v;
                            sums[2] += mm[k] / v;
                            sums[3] += v.ln();
                        }
                        sums
                    });
                let a = hyp.scale;
                syy / (a * a) - 2.0 * sym / a + smm + yy.len() as f64 * (a * a).ln() + sln
            })
            .collect();
        let best = nll.iter().copied().fold(f64::INFINITY, f64::min);
        let post: Vec<f64> = nll
            .iter()
            .zip(hypotheses)
            .map(|(l, hyp)| hyp.mass * (-(l - best) / 2.0).exp())
            .collect();
        let total: f64 = post.iter().sum();
        // E[x | y, h] = a·m + G_σ (y − a·m): accumulate the gains on y and on m
        let (mut gain_y, mut gain_m) = (vec![0.0; yy.len()], vec![0.0; yy.len()]);
        let mut mean_scale = 0.0;
        for (hyp, q) in hypotheses.iter().zip(&post) {
            let q = q / total;
            if q < 1e-12 {
                continue;
            }
            mean_scale += q * hyp.scale;
            let s2 = hyp.sigma * hyp.sigma;
            for (k, &p) in cov.variances.iter().enumerate() {
                let g = if p == 0.0 { 0.0 } else { p / (p + s2) };
                gain_y[k] += q * g;
                gain_m[k] += q * hyp.scale * g;
            }
        }
        let fy = cov.filter(y, &gain_y);
        let fm = cov.filter(&m, &gain_m);
        fy.iter()
            .zip(&fm)
            .map(|(a, b)| a - b + (mean_scale * self.mean) as f32)
            .collect()
    }

    /// The noise level σ′ in `[lo, hi]` whose Wiener filter, applied to y, comes nearest (in
    /// squared error) to a denoiser's output `f` for the same y: the noise level that denoiser
    /// acts as if it had inferred. Where a blind denoiser's σ′ strays from the true σ, its excess
    /// over the Wiener filter is σ inference; where σ′ is right and the excess remains, it is
    /// the shape of its filter. A log grid of 81 points, then golden-section refinement.
    pub fn nearest_wiener_sigma(
        &self,
        y: &[f32],
        f: &[f32],
        h: usize,
        w: usize,
        [lo, hi]: [f64; 2],
    ) -> f64 {
        let cov = self.covariance(h, w);
        let m = self.mean as f32;
        let yc: Vec<f32> = y.iter().map(|&v| v - m).collect();
        let fc: Vec<f32> = f.iter().map(|&v| v - m).collect();
        let (yy, yf) = (cov.cross_power(&yc, &yc), cov.cross_power(&yc, &fc));
        // ‖G y − f‖² up to the constant ‖f‖², in the eigenbasis (Parseval)
        let dist = |t: f64| {
            let s2 = (2.0 * t).exp();
            cov.variances
                .iter()
                .enumerate()
                .map(|(k, &p)| {
                    let g = if p == 0.0 { 0.0 } else { p / (p + s2) };
                    g * g * yy[k] - 2.0 * g * yf[k]
                })
                .sum::<f64>()
        };
        let (a, b) = (lo.ln(), hi.ln());
        let points = 81;
        let at = |i: usize| a + (b - a) * i as f64 / (points - 1) as f64;
        let best = (0..points)
            .min_by(|&i, &j| dist(at(i)).total_cmp(&dist(at(j))))
            .unwrap_or(0);
        let (mut a, mut b) = (at(best.saturating_sub(1)), at((best + 1).min(points - 1)));
        let g = (5f64.sqrt() - 1.0) / 2.0;
        for _ in 0..40 {
            let (c, d) = (b - g * (b - a), a + g * (b - a));
            if dist(c) < dist(d) {
                b = d;
            } else {
                a = c;
            }
        }
        (0.5 * (a + b)).exp()
    }

    /// The covariance on `h × w` and the power of y − mean along its eigenvectors.
    fn centred_power(&self, y: &[f32], h: usize, w: usize) -> (Arc<Covariance>, Vec<f64>) {
        let cov = self.covariance(h, w);
        let centred: Vec<f32> = y.iter().map(|&v| v - self.mean as f32).collect();
        let power = cov.power(&centred);
        (cov, power)
    }

    /// Wiener gains p/(p + σ²) per eigenvector of the covariance (in [`Covariance`]'s order):
    /// the eigenvalues of the Wiener filter's Jacobian.
    pub fn wiener_gain(&self, h: usize, w: usize, sigma: f64) -> Vec<f64> {
        self.covariance(h, w).wiener_gain(sigma)
    }

    /// The Wiener filter's expected MSE per pixel at noise level σ, in closed form: each
    /// eigen-coefficient keeps p·σ²/(p + σ²) of error, and their mean is the error per pixel.
    pub fn wiener_mse(&self, h: usize, w: usize, sigma: f64) -> f64 {
        let s2 = sigma * sigma;
        let p = &self.covariance(h, w).variances;
        p.iter().map(|p| p * s2 / (p + s2)).sum::<f64>() / p.len() as f64
    }

    /// `count` images of `size × size` pixels, image `k` from stream (seed, Synth, k).
    pub(super) fn generate(&self, size: usize, count: usize, seed: u64) -> Images {
        let [g, _] = self.grid(size, size);
        let p = self.spectrum(g, g);
        let mut data = Vec::with_capacity(count * size * size);
        for k in 0..count {
            let field = self.draw(g, &p, &mut stream(seed, Purpose::Synth, k as u64));
            // the top-left window (all of it when periodic)
            for r in 0..size {
                data.extend_from_slice(&field[r * g..r * g + size]);
            }
        }
        Images::new(data, [count, 1, size, size])
    }

    /// One periodic `size × size` field with spectrum `p` (from [`GaussianField::spectrum`]).
    pub(super) fn draw(&self, size: usize, p: &[f64], rng: &mut impl Rng) -> Vec<f32> {
        let mut buf: Vec<Complex<f64>> = (0..size * size)
            .map(|_| Complex::new(StandardNormal.sample(rng), 0.0))
            .collect();
        fourier::fft2(&mut buf, size, size, Direction::Forward);
        buf.iter_mut().zip(p).for_each(|(v, p)| *v *= p.sqrt());
        fourier::fft2(&mut buf, size, size, Direction::Inverse);
        buf.iter().map(|v| (self.mean + v.re) as f32).collect()
    }
}

/// One hypothesis about how a noisy image was made, for [`GaussianField::posterior_mean`]: the
/// field scaled by `scale` (its mean and fluctuations alike) plus noise of standard deviation
/// `scale · sigma`, with prior mass `mass`. A prior uniform in log(scale) over a wide range makes
/// the posterior mean homogeneous, f(a·y) = a·f(y), and then it is the best homogeneous
/// denoiser (the minimum-risk equivariant estimator under scaling, whose risk is the same at
/// every scale): the bound for a bias-free network, which cannot know the field's amplitude.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hypothesis {
    /// Scale of the field.
    pub scale: f64,
    /// Noise standard deviation relative to the scale.
    pub sigma: f64,
    /// Prior mass.
    pub mass: f64,
}

/// −2 log-likelihood (up to a constant) of an image whose centred power along the covariance's
/// eigenvectors is `power`, at noise variance `s2`.
fn neg_log_likelihood(power: &[f64], variances: &[f64], s2: f64) -> f64 {
    power
        .iter()
        .zip(variances)
        .map(|(q, p)| q / (p + s2) + (p + s2).ln())
        .sum()
}

/// A field's covariance on an `h × w` image in an orthonormal eigenbasis B:
/// C = B diag(variances) Bᵀ.
pub struct Covariance {
    h: usize,
    w: usize,
    /// The variance of each basis coefficient (C's eigenvalues), in the basis' order.
    pub variances: Vec<f64>,
    basis: Basis,
}

enum Basis {
    /// The unitary DFT: direction k is DFT index k (row-major), a periodic field's eigenbasis.
    Fourier,
    /// Orthonormal eigenvectors, the columns of a D × D matrix.
    Dense(Mat<f64>),
}

impl Covariance {
    /// The Wiener gains p/(p + σ²), one per direction.
    pub fn wiener_gain(&self, sigma: f64) -> Vec<f64> {
        let s2 = sigma * sigma;
        self.variances
            .iter()
            .map(|&p| {
                if p == 0.0 && s2 == 0.0 {
                    1.0
                } else {
                    p / (p + s2)
                }
            })
            .collect()
    }

    /// B diag(gain) Bᵀ x: a symmetric filter diagonal in this basis.
    pub fn filter(&self, x: &[f32], gain: &[f64]) -> Vec<f32> {
        match &self.basis {
            Basis::Fourier => fourier::filter(x, self.h, self.w, gain),
            Basis::Dense(b) => {
                let coef = self.coefficients(b, x);
                let mut out = vec![0.0f64; x.len()];
                for (k, (c, g)) in coef.iter().zip(gain).enumerate() {
                    let s = c * g;
                    if s != 0.0 {
                        for (o, v) in out.iter_mut().zip(b.col(k).iter()) {
                            *o += s * v;
                        }
                    }
                }
                out.into_iter().map(|v| v as f32).collect()
            }
        }
    }

    /// The power of x along each direction, in the units of `variances` (for the DFT,
    /// |X\[k\]|²/D; for a dense basis, the squared coefficient).
    pub fn power(&self, x: &[f32]) -> Vec<f64> {
        match &self.basis {
            Basis::Fourier => fourier::power(x, self.h, self.w),
            Basis::Dense(b) => self.coefficients(b, x).iter().map(|c| c * c).collect(),
        }
    }

    /// The cross power of x and z along each direction, ⟨x, bₖ⟩⟨z, bₖ⟩ in the units of
    /// `variances` (for the DFT, Re(X\[k\] Z\[k\]*)/D); `power(x)` is `cross_power(x, x)`.
    pub fn cross_power(&self, x: &[f32], z: &[f32]) -> Vec<f64> {
        match &self.basis {
            Basis::Fourier => {
                let dft = |v: &[f32]| {
                    let mut buf: Vec<Complex<f64>> =
                        v.iter().map(|&v| Complex::new(v as f64, 0.0)).collect();
                    fourier::fft2(&mut buf, self.h, self.w, Direction::Forward);
                    buf
                };
                let d = (self.h * self.w) as f64;
                dft(x)
                    .iter()
                    .zip(dft(z))
                    .map(|(a, b)| (a * b.conj()).re / d)
                    .collect()
            }
            Basis::Dense(b) => self
                .coefficients(b, x)
                .iter()
                .zip(self.coefficients(b, z))
                .map(|(a, b)| a * b)
                .collect(),
        }
    }

    /// The fraction of x's energy along the directions whose variance lies in `[lo, hi]`. With
    /// p ∝ 1/|f|^γ, the directions within a factor 2^(γ/2) of a mode's variance are, for a
    /// periodic field, exactly the Fourier modes in the octave of radial frequencies around it;
    /// for an open field, the window's eigenvectors of those scales.
    pub fn band_fraction(&self, x: &[f32], [lo, hi]: [f64; 2]) -> f64 {
        let power = self.power(x);
        let total: f64 = power.iter().sum();
        if total == 0.0 {
            return 0.0;
        }
        let inside: f64 = power
            .iter()
            .zip(&self.variances)
            .filter(|(_, p)| (lo..=hi).contains(*p))
            .map(|(q, _)| q)
            .sum();
        inside / total
    }

    fn coefficients(&self, b: &Mat<f64>, x: &[f32]) -> Vec<f64> {
        (0..b.ncols())
            .map(|k| {
                b.col(k)
                    .iter()
                    .zip(x)
                    .map(|(u, &v)| u * v as f64)
                    .sum::<f64>()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::Family;

    #[test]
    fn gaussian_field_has_its_spectrum_and_sd() {
        let g = GaussianField::default().periodic();
        let n = 16;
        let imgs = Family::Gaussian(g.clone()).generate(n, 400, 3).unwrap();
        let p = g.spectrum(n, n);
        // average periodogram over images vs the spectrum
        let mut est = vec![0.0; n * n];
        for i in 0..imgs.len() {
            let centred: Vec<f32> = imgs.image(i).iter().map(|v| v - 0.5).collect();
            for (e, q) in est.iter_mut().zip(fourier::power(&centred, n, n)) {
                *e += q / imgs.len() as f64;
            }
        }
        // low frequencies individually: each estimate has relative sd ~ 1/sqrt(400) = 5%
        for k in [1, n, n + 1, 2] {
            let rel = (est[k] - p[k]).abs() / p[k];
            assert!(rel < 0.25, "coefficient {k}: {} vs {}", est[k], p[k]);
        }
        let var: f64 = imgs
            .as_slice()
            .iter()
            .map(|&v| (v as f64 - 0.5).powi(2))
            .sum::<f64>()
            / imgs.as_slice().len() as f64;
        assert!((var.sqrt() - g.sd).abs() < 0.02, "sd {}", var.sqrt());
    }

    /// Open windows have the covariance their eigenbasis describes: near pixels as correlated as
    /// in the periodic field, opposite edges much less (nothing wraps around).
    #[test]
    fn open_fields_have_their_covariance_and_do_not_wrap() {
        let n = 8;
        let count = 4000;
        let cov_of = |g: &GaussianField, a: usize, b: usize| {
            let x = Family::Gaussian(g.clone()).generate(n, count, 5).unwrap();
            (0..count)
                .map(|i| (x.image(i)[a] as f64 - 0.5) * (x.image(i)[b] as f64 - 0.5))
                .sum::<f64>()
                / count as f64
        };
        let open = GaussianField::default();
        let c = open.covariance(n, n);
        let Basis::Dense(b) = &c.basis else {
            panic!("an open field has a dense basis")
        };
        let model = |i: usize, j: usize| -> f64 {
            (0..n * n)
                .map(|k| b[(i, k)] * c.variances[k] * b[(j, k)])
                .sum()
        };
        let var = 0.15f64 * 0.15;
        // (pixel, pixel): itself, its right neighbour, the opposite edge of its row
        for (i, j) in [(0, 0), (0, 1), (0, n - 1), (9, 18)] {
            let (measured, exact) = (cov_of(&open, i, j), model(i, j));
            assert!(
                (measured - exact).abs() < 0.06 * var,
                "({i}, {j}): measured {measured:.3e}, covariance {exact:.3e}"
            );
        }
        let periodic = GaussianField::default().periodic();
        let wrap = |g: &GaussianField| cov_of(g, 0, n - 1) / cov_of(g, 0, 0);
        let (p, o) = (wrap(&periodic), wrap(&open));
        assert!(
            p > 0.3 && o < p - 0.3,
            "corr(first, last pixel of a row): periodic {p:.2}, open {o:.2}"
        );
    }

    #[test]
    fn wiener_shrinks_towards_mean_and_is_exact_at_zero_noise() {
        for g in [
            GaussianField::default(),
            GaussianField::default().periodic(),
        ] {
            let n = 8;
            let x = Family::Gaussian(g.clone()).generate(n, 1, 0).unwrap();
            let same = g.wiener(x.image(0), n, n, 0.0);
            for (a, b) in same.iter().zip(x.image(0)) {
                assert!((a - b).abs() < 1e-5, "{:?}", g.boundary);
            }
            let big = g.wiener(x.image(0), n, n, 100.0);
            assert!(big.iter().all(|v| (v - 0.5).abs() < 1e-3));
        }
    }

    /// The measured MSE of the Wiener filter on fresh fields equals its closed form.
    #[test]
    fn wiener_mse_equals_its_closed_form() {
        for g in [
            GaussianField::default(),
            GaussianField::default().periodic(),
        ] {
            let n = 16;
            let x = Family::Gaussian(g.clone()).generate(n, 2000, 8).unwrap();
            for sigma in [0.02f32, 0.1, 0.4] {
                let y = crate::analysis::metrics::noisy(&x, sigma, 1);
                let mut err = 0.0;
                for i in 0..x.len() {
                    let out = g.wiener(y.image(i), n, n, sigma as f64);
                    err += crate::analysis::metrics::mse(&out, x.image(i));
                }
                let measured = err / x.len() as f64;
                let exact = g.wiener_mse(n, n, sigma as f64);
                assert!(
                    (measured / exact - 1.0).abs() < 0.03,
                    "{:?}, σ = {sigma}: measured {measured}, closed form {exact}",
                    g.boundary
                );
                assert!(exact < (sigma as f64).powi(2));
            }
        }
    }

    #[test]
    fn noise_level_is_estimated_from_the_image() {
        for g in [
            GaussianField::default(),
            GaussianField::default().periodic(),
        ] {
            let n = 32;
            let x = Family::Gaussian(g.clone()).generate(n, 1, 4).unwrap();
            for sigma in [0.1, 0.3, 1.0] {
                let y = crate::analysis::metrics::add_noise(&x, sigma, 9);
                let est = g.estimate_sigma(y.image(0), n, n);
                assert!(
                    (est / sigma as f64 - 1.0).abs() < 0.1,
                    "{:?}, σ = {sigma}: estimated {est}",
                    g.boundary
                );
            }
            // below the field's smallest coefficient variances the noise is hard to see, but
            // the estimate must stay small
            let y = crate::analysis::metrics::add_noise(&x, 0.02, 9);
            assert!(g.estimate_sigma(y.image(0), n, n) < 0.06);
        }
    }

    /// For a periodic field the directions within 2^(γ/2) of a mode's variance are the Fourier
    /// modes in the octave of frequencies around it; an eigenvector of an open field lies
    /// entirely in its own band.
    #[test]
    fn variance_bands_are_frequency_octaves() {
        let n = 12;
        let x: Vec<f32> = (0..n * n)
            .map(|i| ((i * 7919) % 101) as f32 / 101.0 - 0.5)
            .collect();
        let g = GaussianField {
            gamma: 1.5,
            ..GaussianField::default().periodic()
        };
        let c = g.covariance(n, n);
        let spread = 2f64.powf(g.gamma / 2.0);
        // band edges off the grid's radial frequencies (1, √2, 2, √5, …)
        for f in [1.1f64, 2.3, 3.3] {
            let p = c.variances[1] * f.powf(-g.gamma); // variance at |f|, as index 1 has |f| = 1
            let by_variance = c.band_fraction(&x, [p / spread, p * spread]);
            let band = [f / 2f64.sqrt(), f * 2f64.sqrt()];
            let by_frequency = fourier::band_fraction(&x, n, n, band);
            assert!((by_variance - by_frequency).abs() < 1e-9, "|f| = {f}");
            assert!(by_variance > 0.0 && by_variance < 1.0);
        }
        let open = GaussianField::default().covariance(n, n);
        let k = open.variances.len() - 3;
        let Basis::Dense(b) = &open.basis else {
            panic!("an open field has a dense basis")
        };
        let u: Vec<f32> = b.col(k).iter().map(|&v| v as f32).collect();
        let p = open.variances[k];
        assert!((open.band_fraction(&u, [p * 0.999, p * 1.001]) - 1.0).abs() < 1e-6);
    }

    /// The posterior mean over an unknown σ: with all the prior's mass on one σ it is the Wiener
    /// filter at that σ; with σ drawn from a spread prior it beats plugging in the
    /// maximum-likelihood σ (it is the MMSE denoiser for that prior) and cannot beat the filter
    /// that knows σ.
    #[test]
    fn posterior_mean_is_the_blind_optimum() {
        let g = GaussianField::default();
        let n = 12;
        let x = Family::Gaussian(g.clone()).generate(n, 400, 11).unwrap();
        let y = crate::analysis::metrics::add_noise(&x, 0.1, 3);
        let at = |sigma| Hypothesis {
            scale: 1.0,
            sigma,
            mass: 1.0,
        };
        let one = g.posterior_mean(y.image(0), n, n, &[at(0.1)]);
        let wiener = g.wiener(y.image(0), n, n, 0.1);
        for (a, b) in one.iter().zip(&wiener) {
            assert!((a - b).abs() < 1e-6);
        }
        // σ log-uniform on [0.002, 0.4] (image i gets the i-th quantile), errors weighted by 1/σ
        // as in training: the optimum is the posterior mean under masses ∝ 1/σ on a log grid
        let (lo, hi) = (0.002f64, 0.4f64);
        let k = 200;
        let prior: Vec<Hypothesis> = (0..k)
            .map(|j| (lo.ln() + (j as f64 + 0.5) / k as f64 * (hi / lo).ln()).exp())
            .map(|s| Hypothesis {
                mass: 1.0 / s,
                ..at(s)
            })
            .collect();
        let (mut bayes, mut plug_in, mut known) = (0.0, 0.0, 0.0);
        for i in 0..x.len() {
            let sigma = (lo.ln() + (i as f64 + 0.5) / x.len() as f64 * (hi / lo).ln()).exp();
            let y = crate::analysis::metrics::add_noise(&x.select(&[i]), sigma as f32, i as u64);
            let err = |out: &[f32]| crate::analysis::metrics::mse(out, x.image(i)) / sigma;
            bayes += err(&g.posterior_mean(y.image(0), n, n, &prior));
            let estimated = g.estimate_sigma(y.image(0), n, n);
            plug_in += err(&g.wiener(y.image(0), n, n, estimated));
            known += err(&g.wiener(y.image(0), n, n, sigma));
        }
        assert!(
            known < bayes && bayes < plug_in,
            "MSE/σ summed: known σ {known:.4}, posterior mean {bayes:.4}, plug-in {plug_in:.4}"
        );
    }

    /// The Wiener filter at σ₀ acts as if it had inferred σ₀; a filter that shrinks less acts
    /// as if the noise were lower.
    #[test]
    fn nearest_wiener_sigma_recovers_the_filters_sigma() {
        let g = GaussianField::default();
        let n = 12;
        let x = Family::Gaussian(g.clone()).generate(n, 1, 3).unwrap();
        let y = crate::analysis::metrics::add_noise(&x, 0.1, 1);
        for s0 in [0.03, 0.1, 0.3] {
            let f = g.wiener(y.image(0), n, n, s0);
            let s = g.nearest_wiener_sigma(y.image(0), &f, n, n, [0.005, 2.0]);
            assert!((s / s0 - 1.0).abs() < 1e-3, "σ₀ = {s0}: found {s}");
        }
        // the identity acts as if there were no noise: the bottom of the range
        let s = g.nearest_wiener_sigma(y.image(0), y.image(0), n, n, [0.005, 2.0]);
        assert!(s < 0.006, "{s}");
    }

    #[test]
    fn records_without_a_boundary_are_periodic() {
        let old: GaussianField =
            serde_json::from_str(r#"{"gamma": 2.0, "mean": 0.5, "sd": 0.15}"#).unwrap();
        assert_eq!(old.boundary, Boundary::Periodic);
    }
}
