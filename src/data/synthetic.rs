//! Synthetic image families whose optimal denoiser is known, for the paper's optimality tests:
//!
//! - [`GaussianField`]: stationary Gaussian fields with power spectrum ∝ 1/|f|^γ. Their MMSE
//!   denoiser is the Wiener filter, computable from the same parameters
//!   ([`GaussianField::spectrum`]).
//! - [`CAlpha`]: C^α contours separating C^α regions (the paper's appendix), whose optimal MSE
//!   decays as σ^(2α/(α+1)).
//! - [`Disks`]: one disk on a background (centre, radius, foreground and background intensity):
//!   a 5-parameter manifold where GAHBs are suboptimal.
//!
//! Image `k` of a family is drawn from the stream (seed, Synth, k), so the first images of a
//! large set equal a small set generated with the same seed.

pub use super::gaussian::{Boundary, Covariance, GaussianField, Hypothesis};
use super::{DataError, Images};
use crate::config::{check, InvalidField};
use crate::rng::{stream, Purpose};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// A synthetic family with its parameters; the JSON sidecar of a generated `.npy`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum Family {
    /// Stationary Gaussian field.
    Gaussian(GaussianField),
    /// C^α regions separated by a C^α contour.
    CAlpha(CAlpha),
    /// Disks.
    Disks(Disks),
}

impl Family {
    /// The family an `.npy` was generated from, read from the `.json` that `tweedie data synth`
    /// writes beside it; `None` for any other file.
    pub fn of_npy(npy: &std::path::Path) -> Option<Family> {
        let text = std::fs::read_to_string(npy.with_extension("json")).ok()?;
        let sidecar: serde_json::Value = serde_json::from_str(&text).ok()?;
        serde_json::from_value(sidecar.get("family")?.clone()).ok()
    }

    /// Draws `count` images of `size × size` pixels, image `k` from stream (seed, k).
    pub fn generate(&self, size: usize, count: usize, seed: u64) -> Result<Images, DataError> {
        check(size >= 4, "size", size, "must be 4 or more")?;
        check(count > 0, "count", count, "must be at least 1")?;
        self.validate()?;
        let each = |draw: &dyn Fn(&mut ChaCha8Rng) -> Vec<f32>| {
            let data = (0..count)
                .flat_map(|k| draw(&mut stream(seed, Purpose::Synth, k as u64)))
                .collect();
            Images::new(data, [count, 1, size, size])
        };
        Ok(match self {
            // a Gaussian field draws on a grid it may crop (open edges)
            Family::Gaussian(g) => g.generate(size, count, seed),
            Family::CAlpha(c) => each(&|rng| c.draw(size, rng)),
            Family::Disks(s) => each(&|rng| s.draw(size, rng)),
        })
    }

    /// Writes `images` (drawn by [`Family::generate`] with `seed`) to `npy` and the family's
    /// parameters to the `.json` beside it, which [`Family::of_npy`] reads back.
    pub fn save(&self, images: &Images, seed: u64, npy: &std::path::Path) -> std::io::Result<()> {
        super::write_npy(images, npy)?;
        let [count, _, size, _] = images.shape();
        let sidecar = serde_json::json!({
            "family": self,
            "size": size,
            "count": count,
            "seed": seed,
            "fingerprint": images.fingerprint(),
            "tweedie_version": env!("CARGO_PKG_VERSION"),
        });
        crate::io::write_json(&npy.with_extension("json"), &sidecar)
    }

    fn validate(&self) -> Result<(), InvalidField> {
        match self {
            Family::Gaussian(g) => {
                check(
                    g.gamma.is_finite() && g.gamma >= 0.0,
                    "gamma",
                    g.gamma,
                    "must be ≥ 0",
                )?;
                check(g.sd > 0.0 && g.sd.is_finite(), "sd", g.sd, "must be > 0")
            }
            Family::CAlpha(c) => check(
                c.alpha > 0.0 && c.alpha <= 8.0,
                "alpha",
                c.alpha,
                "must be in (0, 8]",
            ),
            Family::Disks(_) => Ok(()),
        }
    }
}

/// C^α images: two regions, each a smooth C^α intensity, separated by the graph of a C^α
/// function (a random contour), as in the paper's appendix. Both the contour and the region
/// intensities are random multiscale sums Σⱼ 2^(−jα) Σₖ ξⱼₖ φ(2ʲt − k) of a B-spline φ smoother
/// than α (cubic for α < 3, the next odd degree above α beyond), so their Hölder regularity is α.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CAlpha {
    /// Regularity α of contours and regions, in (0, 8].
    pub alpha: f64,
}

impl Default for CAlpha {
    fn default() -> Self {
        Self { alpha: 1.0 }
    }
}

/// Cubic B-spline, support [−2, 2], C² everywhere.
fn bspline3(t: f64) -> f64 {
    let a = t.abs();
    if a < 1.0 {
        (4.0 - 6.0 * a * a + 3.0 * a * a * a) / 6.0
    } else if a < 2.0 {
        (2.0 - a).powi(3) / 6.0
    } else {
        0.0
    }
}

/// Centred cardinal B-spline of degree m (support [−(m+1)/2, (m+1)/2], C^(m−1)):
/// (1/m!) Σₖ (−1)ᵏ C(m+1, k) (t + (m+1)/2 − k)₊^m.
fn bspline(m: usize, t: f64) -> f64 {
    if m == 3 {
        return bspline3(t);
    }
    let half = (m + 1) as f64 / 2.0;
    if t.abs() >= half {
        return 0.0;
    }
    let mut binom = 1.0;
    let mut factorial = 1.0;
    (1..=m).for_each(|i| factorial *= i as f64);
    let mut sum = 0.0;
    for k in 0..=m + 1 {
        let u = t + half - k as f64;
        if u > 0.0 {
            let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
            sum += sign * binom * u.powi(m as i32);
        }
        binom = binom * (m + 1 - k) as f64 / (k + 1) as f64;
    }
    sum / factorial
}

impl CAlpha {
    /// The B-spline degree: cubic below α = 3 (the family as first generated), then the
    /// smallest odd degree above α.
    fn degree(&self) -> usize {
        if self.alpha < 3.0 {
            3
        } else {
            let m = self.alpha.floor() as usize + 1;
            m + (1 - m % 2)
        }
    }

    /// Translates k of the splines that touch [0, 1] at scale `scale`.
    fn translates(&self, scale: f64) -> std::ops::RangeInclusive<i64> {
        let reach = (self.degree() as i64 + 2) / 2;
        -reach..=(scale as i64 + reach)
    }

    /// A random C^α function on [0, 1], sampled at `n` points, normalised to max |g| = 1.
    fn function_1d(&self, n: usize, rng: &mut impl Rng) -> Vec<f64> {
        let levels = (n as f64).log2().ceil() as i32 + 1;
        let m = self.degree();
        let mut g = vec![0.0; n];
        for j in 0..levels {
            let scale = 2f64.powi(j);
            let amp = scale.powf(-self.alpha);
            for k in self.translates(scale) {
                let xi: f64 = StandardNormal.sample(rng);
                for (i, v) in g.iter_mut().enumerate() {
                    let t = (i as f64 + 0.5) / n as f64;
                    *v += amp * xi * bspline(m, scale * t - k as f64);
                }
            }
        }
        normalise(g)
    }

    /// A random C^α function on [0, 1]², sampled on an `n × n` grid, max |u| = 1.
    fn function_2d(&self, n: usize, rng: &mut impl Rng) -> Vec<f64> {
        let levels = (n as f64).log2().ceil() as i32 + 1;
        let m = self.degree();
        let mut u = vec![0.0; n * n];
        for j in 0..levels {
            let scale = 2f64.powi(j);
            let amp = scale.powf(-self.alpha);
            let ks = self.translates(scale);
            // the splines of each translate sampled once: B[k][i] = φ(2ʲ(i + ½)/n − k)
            let basis: Vec<Vec<f64>> = ks
                .clone()
                .map(|k| {
                    (0..n)
                        .map(|i| bspline(m, scale * (i as f64 + 0.5) / n as f64 - k as f64))
                        .collect()
                })
                .collect();
            for by in &basis {
                for bx in &basis {
                    let xi: f64 = StandardNormal.sample(rng);
                    for (r, byr) in by.iter().enumerate() {
                        if *byr == 0.0 {
                            continue;
                        }
                        for (c, bxc) in bx.iter().enumerate() {
                            u[r * n + c] += amp * xi * byr * bxc;
                        }
                    }
                }
            }
        }
        normalise(u)
    }

    fn draw(&self, n: usize, rng: &mut impl Rng) -> Vec<f32> {
        let contour = self.function_1d(n, rng);
        let offset: f64 = rng.random_range(0.3..0.7);
        let height: f64 = rng.random_range(0.1..0.25);
        let transpose: bool = rng.random();
        let regions = [self.function_2d(n, rng), self.function_2d(n, rng)];
        let levels: [f64; 2] = [rng.random_range(0.2..0.8), rng.random_range(0.2..0.8)];
        let mut img = vec![0.0f32; n * n];
        for r in 0..n {
            for c in 0..n {
                let (along, across) = if transpose { (r, c) } else { (c, r) };
                let edge = offset + height * contour[along];
                let side = usize::from((across as f64 + 0.5) / n as f64 > edge);
                let v = levels[side] + 0.15 * regions[side][r * n + c];
                img[r * n + c] = v.clamp(0.0, 1.0) as f32;
            }
        }
        img
    }
}

fn normalise(mut v: Vec<f64>) -> Vec<f64> {
    let m = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if m > 0.0 {
        v.iter_mut().for_each(|x| *x /= m);
    }
    v
}

/// Disks on a uniform background: centre, radius, foreground and background intensity drawn
/// uniformly from [`Disks::bounds`]; the edge is anti-aliased (a linear ramp one pixel wide), so
/// images vary continuously with the 5 parameters ([`Disks::render`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Disks {}

/// The parameters of one disk image, in pixels (centre, radius) and intensities.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Disk {
    /// Centre, column coordinate.
    pub cx: f64,
    /// Centre, row coordinate.
    pub cy: f64,
    /// Radius.
    pub r: f64,
    /// Intensity inside.
    pub fg: f64,
    /// Intensity outside.
    pub bg: f64,
}

impl Disk {
    /// As a vector (cx, cy, r, fg, bg).
    pub fn to_array(self) -> [f64; 5] {
        [self.cx, self.cy, self.r, self.fg, self.bg]
    }
    /// From a vector (cx, cy, r, fg, bg).
    pub fn from_array(a: [f64; 5]) -> Self {
        Self {
            cx: a[0],
            cy: a[1],
            r: a[2],
            fg: a[3],
            bg: a[4],
        }
    }
}

impl Disks {
    /// The uniform prior's box for `n × n` images, per parameter (cx, cy, r, fg, bg):
    /// [lower, upper].
    pub fn bounds(n: usize) -> [[f64; 2]; 5] {
        let s = n as f64;
        [
            [0.3 * s, 0.7 * s],
            [0.3 * s, 0.7 * s],
            [0.1 * s, 0.3 * s],
            [0.0, 1.0],
            [0.0, 1.0],
        ]
    }

    /// The fraction of pixel (x, y) inside the disk of centre (cx, cy) and radius r (the
    /// anti-aliased mask).
    pub fn coverage(cx: f64, cy: f64, r: f64, x: usize, y: usize) -> f64 {
        let d = ((x as f64 + 0.5 - cx).powi(2) + (y as f64 + 0.5 - cy).powi(2)).sqrt();
        (r - d + 0.5).clamp(0.0, 1.0)
    }

    /// The `n × n` image of a disk, into `out`.
    pub fn render_into(n: usize, disk: Disk, out: &mut [f32]) {
        for y in 0..n {
            for x in 0..n {
                let m = Self::coverage(disk.cx, disk.cy, disk.r, x, y);
                out[y * n + x] = (disk.bg + (disk.fg - disk.bg) * m) as f32;
            }
        }
    }

    /// The `n × n` image of a disk.
    pub fn render(n: usize, disk: Disk) -> Vec<f32> {
        let mut img = vec![0.0f32; n * n];
        Self::render_into(n, disk, &mut img);
        img
    }

    fn draw(&self, n: usize, rng: &mut impl Rng) -> Vec<f32> {
        let b = Self::bounds(n);
        // drawn in this order since the family exists: keep it (seeded data sets stay the same)
        let cx = rng.random_range(b[0][0]..b[0][1]);
        let cy = rng.random_range(b[1][0]..b[1][1]);
        let r = rng.random_range(b[2][0]..b[2][1]);
        let fg: f64 = rng.random_range(b[3][0]..b[3][1]);
        let bg: f64 = rng.random_range(b[4][0]..b[4][1]);
        Self::render(n, Disk { cx, cy, r, fg, bg })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_seeded_prefix_stable_and_in_range() {
        for fam in [
            Family::CAlpha(CAlpha::default()),
            Family::Disks(Disks::default()),
        ] {
            let a = fam.generate(16, 3, 7).unwrap();
            let b = fam.generate(16, 5, 7).unwrap();
            let c = fam.generate(16, 3, 8).unwrap();
            assert_eq!(a.as_slice(), &b.as_slice()[..3 * 256]);
            assert_ne!(a, c);
            assert!(a.as_slice().iter().all(|v| (0.0..=1.0).contains(v)));
            // not constant
            let img = a.image(0);
            assert!(img.iter().any(|&v| (v - img[0]).abs() > 0.05));
        }
    }

    /// Hölder regularity α shows in the k-th differences (k > α) of the contour function:
    /// E|Δₕᵏ g|² ∝ h^(2α) at scales between the pixel and the interval.
    #[test]
    fn contours_have_the_stated_regularity() {
        let n = 1024;
        for alpha in [1.0, 2.0, 3.5] {
            let fam = CAlpha { alpha };
            let hs = [4usize, 8, 16, 32];
            let mut energy = vec![0.0; hs.len()];
            for draw in 0..16 {
                let g = fam.function_1d(n, &mut stream(3, Purpose::Synth, draw));
                for (e, &h) in energy.iter_mut().zip(&hs) {
                    // 5th differences: exact for polynomials of degree 4, so they see α < 5
                    let coef = [1.0, -5.0, 10.0, -10.0, 5.0, -1.0];
                    let count = n - 5 * h;
                    *e += (0..count)
                        .map(|i| {
                            let d: f64 =
                                coef.iter().enumerate().map(|(k, c)| c * g[i + k * h]).sum();
                            d * d
                        })
                        .sum::<f64>()
                        / count as f64;
                }
            }
            let (x, y): (Vec<f64>, Vec<f64>) = hs
                .iter()
                .zip(&energy)
                .map(|(h, e)| ((*h as f64).ln(), e.ln()))
                .unzip();
            let fit = crate::analysis::rate::fit_line(&x, &y).unwrap();
            assert!(
                (fit.slope / 2.0 - alpha).abs() < 0.3,
                "α = {alpha}: differences give {}",
                fit.slope / 2.0
            );
        }
        assert!((bspline(5, 0.7) - bspline(5, -0.7)).abs() < 1e-12);
        // a B-spline is a partition of unity
        for m in [3, 5, 7] {
            let s: f64 = (-6..=6).map(|k| bspline(m, 0.3 - k as f64)).sum();
            assert!((s - 1.0).abs() < 1e-9, "degree {m}: {s}");
        }
    }

    #[test]
    fn bad_parameters_are_errors() {
        let f = Family::CAlpha(CAlpha { alpha: -1.0 });
        match f.generate(16, 1, 0).unwrap_err() {
            DataError::Invalid(e) => assert_eq!(e.field, "alpha"),
            other => panic!("expected an invalid alpha, got {other}"),
        }
        assert!(Family::Disks(Disks {}).generate(2, 1, 0).is_err());
    }
}
