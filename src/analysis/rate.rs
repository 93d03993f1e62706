//! Rates from measurements: the least-squares line through (x, y) points with the standard error
//! of its slope, for convergence rates read off log-log (or PSNR vs −20·log₁₀σ) plots, such as
//! the C^α rate MSE ∝ σ^(2α/(α+1)) of the optimality study.

use serde::{Deserialize, Serialize};

/// A fitted line y ≈ intercept + slope·x.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LineFit {
    /// Slope.
    pub slope: f64,
    /// Intercept.
    pub intercept: f64,
    /// Standard error of the slope, √(s²/Sxx) with s² = RSS/(n − 2) (0 for two points).
    pub stderr: f64,
    /// Number of points.
    pub points: usize,
}

/// Ordinary least squares; `None` with fewer than two points or all x equal.
pub fn fit_line(x: &[f64], y: &[f64]) -> Option<LineFit> {
    let n = x.len().min(y.len());
    if n < 2 {
        return None;
    }
    let mx = x[..n].iter().sum::<f64>() / n as f64;
    let my = y[..n].iter().sum::<f64>() / n as f64;
    let sxx: f64 = x[..n].iter().map(|v| (v - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = x[..n]
        .iter()
        .zip(&y[..n])
        .map(|(a, b)| (a - mx) * (b - my))
        .sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let rss: f64 = x[..n]
        .iter()
        .zip(&y[..n])
        .map(|(a, b)| (b - intercept - slope * a).powi(2))
        .sum();
    let stderr = if n > 2 {
        (rss / (n - 2) as f64 / sxx).sqrt()
    } else {
        0.0
    };
    Some(LineFit {
        slope,
        intercept,
        stderr,
        points: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Purpose};
    use rand_distr::{Distribution, StandardNormal};

    #[test]
    fn an_exact_line_is_recovered_with_zero_error() {
        let x = [1.0, 2.0, 4.0, 7.0];
        let y: Vec<f64> = x.iter().map(|v| 3.0 - 0.5 * v).collect();
        let fit = fit_line(&x, &y).unwrap();
        assert!((fit.slope + 0.5).abs() < 1e-12 && (fit.intercept - 3.0).abs() < 1e-12);
        assert!(fit.stderr < 1e-12);
        assert!(fit_line(&[1.0], &[2.0]).is_none());
        assert!(fit_line(&[1.0, 1.0], &[2.0, 3.0]).is_none());
    }

    /// With noise of sd s on each point, the slope lands within a few standard errors of the
    /// truth, and the standard error matches s/√Sxx.
    #[test]
    fn the_standard_error_matches_the_noise() {
        let x: Vec<f64> = (0..40).map(|i| i as f64 * 0.25).collect();
        let s = 0.3;
        let mut rng = stream(11, Purpose::Probe, 0);
        let mut slopes = Vec::new();
        for _ in 0..200 {
            let y: Vec<f64> = x
                .iter()
                .map(|v| {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    1.0 + 0.75 * v + s * z
                })
                .collect();
            let fit = fit_line(&x, &y).unwrap();
            let mx = x.iter().sum::<f64>() / x.len() as f64;
            let sxx: f64 = x.iter().map(|v| (v - mx).powi(2)).sum();
            let expected = s / sxx.sqrt();
            assert!(
                (fit.stderr / expected - 1.0).abs() < 0.5,
                "{} vs {expected}",
                fit.stderr
            );
            slopes.push(fit.slope);
        }
        let mean = slopes.iter().sum::<f64>() / slopes.len() as f64;
        let sd = (slopes.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 199.0).sqrt();
        let mx = x.iter().sum::<f64>() / x.len() as f64;
        let sxx: f64 = x.iter().map(|v| (v - mx).powi(2)).sum();
        assert!(
            (mean - 0.75).abs() < 3.0 * sd / 200f64.sqrt(),
            "mean slope {mean}"
        );
        assert!((sd * sxx.sqrt() / s - 1.0).abs() < 0.2, "slope sd {sd}");
    }
}
