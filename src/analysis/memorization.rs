//! Memorization and generalization measured on samples and denoiser pairs (Kadkhodaie et al.
//! 2024, §2): each sample's nearest training images, the memorization ratio, and the model
//! variance between two denoisers. Similarity is the correlation of [`crate::similarity`].

use super::metrics::noisy;
use crate::data::Images;
use crate::denoise::{DenoiseError, Denoiser};
use crate::similarity::correlation;
use serde::{Deserialize, Serialize};

/// Nearest-neighbour statistics of one set of samples against a training set.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Nearest {
    /// Correlation with the most correlated image of the network's own training set.
    pub own_similarity: Vec<f32>,
    /// Same, in the other network's training set.
    pub other_similarity: Vec<f32>,
    /// Index (in the own training set) of the nearest image by L2.
    pub own_index: Vec<usize>,
    /// L2 distance to the nearest own training image.
    pub own_l2: Vec<f32>,
    /// d₁/d₂: nearest over second-nearest L2 distance in the own set (absent when N = 1).
    pub memorization_ratio: Vec<Option<f32>>,
    /// Median of `own_similarity`.
    pub median_own_similarity: f32,
    /// Median of `other_similarity`.
    pub median_other_similarity: f32,
}

/// The median (the upper one for an even count); NaN when empty.
pub fn median(v: &[f32]) -> f32 {
    if v.is_empty() {
        return f32::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[s.len() / 2]
}

fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f32>()
        .sqrt()
}

/// Nearest training images of each sample, in its own training set and in the other one.
pub fn nearest(samples: &Images, own: &Images, other: &Images) -> Nearest {
    let mut out = Nearest::default();
    for k in 0..samples.len() {
        let s = samples.image(k);
        let best = |set: &Images| {
            (0..set.len())
                .map(|i| correlation(s, set.image(i)))
                .fold(f32::NEG_INFINITY, f32::max)
        };
        out.own_similarity.push(best(own));
        out.other_similarity.push(best(other));
        let mut d: Vec<(f32, usize)> = (0..own.len()).map(|i| (l2(s, own.image(i)), i)).collect();
        d.sort_by(|a, b| a.0.total_cmp(&b.0));
        out.own_index.push(d[0].1);
        out.own_l2.push(d[0].0);
        out.memorization_ratio
            .push(d.get(1).map(|second| d[0].0 / second.0.max(1e-12)));
    }
    out.median_own_similarity = median(&out.own_similarity);
    out.median_other_similarity = median(&out.other_similarity);
    out
}

/// Correlation of sample k of one set with sample k of the other.
pub fn paired_similarity(a: &Images, b: &Images) -> Vec<f32> {
    (0..a.len().min(b.len()))
        .map(|k| correlation(a.image(k), b.image(k)))
        .collect()
}

/// E‖f_a(y) − f_b(y)‖²/D over noisy versions of `clean` at `sigma` (the noise of
/// [`noisy`]): how much two denoisers trained on different sets disagree.
pub fn model_variance(
    fa: &impl Denoiser,
    fb: &impl Denoiser,
    clean: &Images,
    sigma: f32,
    seed: u64,
) -> Result<f64, DenoiseError> {
    let y = noisy(clean, sigma, seed);
    let (a, b) = (fa.denoise(&y, Some(sigma))?, fb.denoise(&y, Some(sigma))?);
    let n = a.as_slice().len().max(1) as f64;
    Ok(a.as_slice()
        .iter()
        .zip(b.as_slice())
        .map(|(u, v)| ((u - v) as f64).powi(2))
        .sum::<f64>()
        / n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::{Family, GaussianField};
    use crate::denoise::Wiener;

    #[test]
    fn nearest_finds_copies_and_ratio() {
        let base = Family::Disks(Default::default()).generate(8, 4, 1).unwrap();
        let own = base.select(&[0, 1]);
        let other = base.select(&[2, 3]);
        let samples = base.select(&[1]);
        let nn = nearest(&samples, &own, &other);
        assert!((nn.own_similarity[0] - 1.0).abs() < 1e-5);
        assert!(nn.other_similarity[0] < 0.999);
        assert_eq!(nn.own_index[0], 1);
        assert!(nn.memorization_ratio[0].unwrap() < 1e-3);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    }

    #[test]
    fn model_variance_is_zero_for_one_denoiser_and_positive_for_two() {
        let field = GaussianField::default();
        let x = Family::Gaussian(field.clone()).generate(8, 3, 1).unwrap();
        let w = Wiener::new(field.clone());
        assert_eq!(model_variance(&w, &w, &x, 0.1, 0).unwrap(), 0.0);
        let other = Wiener::new(GaussianField {
            gamma: field.gamma + 1.0,
            ..field
        });
        assert!(model_variance(&w, &other, &x, 0.1, 0).unwrap() > 0.0);
    }
}
