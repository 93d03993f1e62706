//! Two-dimensional discrete Fourier transforms of single-channel images (rustfft along rows,
//! then columns) and the radial frequency of each coefficient. Used by the Gaussian-field
//! family and its Wiener filter, which are diagonal in this basis.

use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

/// Direction of a transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `X[k] = Σ x[n] e^{−2πi k·n/N}`, unnormalized.
    Forward,
    /// `x[n] = (1/(H·W)) Σ X[k] e^{+2πi k·n/N}`: the exact inverse of `Forward`.
    Inverse,
}

/// Transforms an `h × w` row-major complex image in place.
pub fn fft2(buf: &mut [Complex<f64>], h: usize, w: usize, dir: Direction) {
    assert_eq!(buf.len(), h * w);
    let mut planner = FftPlanner::<f64>::new();
    let (row, col) = match dir {
        Direction::Forward => (planner.plan_fft_forward(w), planner.plan_fft_forward(h)),
        Direction::Inverse => (planner.plan_fft_inverse(w), planner.plan_fft_inverse(h)),
    };
    for r in buf.chunks_exact_mut(w) {
        row.process(r);
    }
    let mut column = vec![Complex::new(0.0, 0.0); h];
    for c in 0..w {
        for r in 0..h {
            column[r] = buf[r * w + c];
        }
        col.process(&mut column);
        for r in 0..h {
            buf[r * w + c] = column[r];
        }
    }
    if dir == Direction::Inverse {
        let s = 1.0 / (h * w) as f64;
        buf.iter_mut().for_each(|v| *v *= s);
    }
}

/// Signed integer frequency of DFT index `k` of a length-`n` transform (k or k − n).
pub fn signed_freq(k: usize, n: usize) -> f64 {
    if k <= n / 2 {
        k as f64
    } else {
        k as f64 - n as f64
    }
}

/// |f| in cycles per image of coefficient (ky, kx).
pub fn radial_freq(ky: usize, kx: usize, h: usize, w: usize) -> f64 {
    let fy = signed_freq(ky, h);
    let fx = signed_freq(kx, w);
    (fy * fy + fx * fx).sqrt()
}

/// Applies a real, symmetric gain per Fourier coefficient to a real image: F⁻¹ diag(g) F x.
pub fn filter(x: &[f32], h: usize, w: usize, gain: &[f64]) -> Vec<f32> {
    let mut buf: Vec<Complex<f64>> = x.iter().map(|&v| Complex::new(v as f64, 0.0)).collect();
    fft2(&mut buf, h, w, Direction::Forward);
    buf.iter_mut().zip(gain).for_each(|(v, g)| *v *= g);
    fft2(&mut buf, h, w, Direction::Inverse);
    buf.iter().map(|v| v.re as f32).collect()
}

/// Power `|X[k]|²/(H·W)` of each coefficient: for a stationary field, an unbiased estimate of its
/// spectrum in the units [`filter`] gains use.
pub fn power(x: &[f32], h: usize, w: usize) -> Vec<f64> {
    let mut buf: Vec<Complex<f64>> = x.iter().map(|&v| Complex::new(v as f64, 0.0)).collect();
    fft2(&mut buf, h, w, Direction::Forward);
    let s = 1.0 / (h * w) as f64;
    buf.iter().map(|v| v.norm_sqr() * s).collect()
}

/// The fraction of x's energy in the Fourier modes whose radial frequency |f| (cycles per
/// image) lies in [lo, hi]: how much of a vector is "of that frequency band".
pub fn band_fraction(x: &[f32], h: usize, w: usize, [lo, hi]: [f64; 2]) -> f64 {
    let p = power(x, h, w);
    let total: f64 = p.iter().sum();
    if total == 0.0 {
        return 0.0;
    }
    let inside: f64 = p
        .iter()
        .enumerate()
        .filter(|(i, _)| (lo..=hi).contains(&radial_freq(i / w, i % w, h, w)))
        .map(|(_, v)| v)
        .sum();
    inside / total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cosine_lies_in_its_band() {
        let (h, w) = (8, 12);
        let x: Vec<f32> = (0..h * w)
            .map(|i| {
                let (r, c) = ((i / w) as f64, (i % w) as f64);
                (2.0 * std::f64::consts::PI * (2.0 * r / h as f64 + 3.0 * c / w as f64)).cos()
                    as f32
            })
            .collect();
        let f = 13f64.sqrt();
        assert!((band_fraction(&x, h, w, [f - 0.01, f + 0.01]) - 1.0).abs() < 1e-9);
        assert!(band_fraction(&x, h, w, [0.0, 3.0]) < 1e-9);
    }

    #[test]
    fn inverse_undoes_forward_and_parseval_holds() {
        let (h, w) = (4, 6);
        let x: Vec<f32> = (0..h * w).map(|i| ((i * 37) % 11) as f32 / 11.0).collect();
        let y = filter(&x, h, w, &vec![1.0; h * w]);
        for (a, b) in x.iter().zip(&y) {
            assert!((a - b).abs() < 1e-6);
        }
        let energy: f64 = x.iter().map(|&v| (v as f64).powi(2)).sum();
        let spectral: f64 = power(&x, h, w).iter().sum();
        assert!((energy - spectral).abs() < 1e-9 * energy.max(1.0));
    }
}
