//! Image similarity as the paper's code measures it: the cosine similarity of mean-removed
//! images, i.e. their correlation. Raw cosine on [0, 1] pixels has a high floor (all pixels are
//! positive) and hides the memorization effect (DESIGN.md).

/// Correlation of two images: cosine similarity after removing each image's mean.
/// Returns 0 when either image is constant.
pub fn correlation(x: &[f32], y: &[f32]) -> f32 {
    debug_assert_eq!(x.len(), y.len());
    let n = x.len() as f64;
    let mx = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let my = y.iter().map(|&v| v as f64).sum::<f64>() / n;
    let (mut xy, mut xx, mut yy) = (0.0f64, 0.0f64, 0.0f64);
    for (&a, &b) in x.iter().zip(y) {
        let (a, b) = (a as f64 - mx, b as f64 - my);
        xy += a * b;
        xx += a * a;
        yy += b * b;
    }
    if xx == 0.0 || yy == 0.0 {
        0.0
    } else {
        (xy / (xx * yy).sqrt()) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_ignores_offset_and_gain() {
        let x = [0.1, 0.5, 0.2, 0.9];
        let y: Vec<f32> = x.iter().map(|v| 0.3 + 0.5 * v).collect();
        assert!((correlation(&x, &y) - 1.0).abs() < 1e-6);
        let z: Vec<f32> = x.iter().map(|v| 1.0 - v).collect();
        assert!((correlation(&x, &z) + 1.0).abs() < 1e-6);
        assert_eq!(correlation(&x, &[0.5; 4]), 0.0);
    }
}
