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
    /// Index (in the own training set) of the most correlated image: the one `own_similarity`
    /// measures and the pair figures show (studies written before: the nearest by L2).
    pub own_index: Vec<usize>,
    /// L2 distance (raw pixels) to the most correlated own training image.
    pub own_l2: Vec<f32>,
    /// d₁/d₂: nearest over second-nearest distance in the own set between normalized images
    /// (mean removed, unit norm: d = √(2 − 2·correlation)); absent when N = 1. Normalized,
    /// because a bias-free network is homogeneous and memorizes up to contrast: its samples are
    /// scaled copies, which raw L2 would not count (studies written before: raw L2).
    pub memorization_ratio: Vec<Option<f32>>,
    /// Median of `own_similarity`.
    pub median_own_similarity: f32,
    /// Median of `other_similarity`.
    pub median_other_similarity: f32,
    /// f_mem: the fraction of samples whose `memorization_ratio` is below
    /// [`MEMORIZED_RATIO`] (absent when N = 1, where no second-nearest image exists; and in
    /// studies written before).
    #[serde(default)]
    pub memorized_fraction: Option<f32>,
}

/// A sample is a copy of a training image when its nearest training image is three times
/// closer than the second-nearest: the criterion of Gu et al. (2023), "On memorization in
/// diffusion models", used by Bonnaire et al. (2025), "Why diffusion models don't memorize" —
/// here on normalized images (see [`Nearest::memorization_ratio`]).
pub const MEMORIZED_RATIO: f32 = 1.0 / 3.0;

/// f_mem: the fraction of ratios d₁/d₂ below [`MEMORIZED_RATIO`]; `None` when no ratio exists.
pub fn memorized_fraction(ratios: &[Option<f32>]) -> Option<f32> {
    let known: Vec<f32> = ratios.iter().flatten().copied().collect();
    (!known.is_empty())
        .then(|| known.iter().filter(|r| **r < MEMORIZED_RATIO).count() as f32 / known.len() as f32)
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
        // correlations with every own image: the most correlated one is the nearest, and the
        // ratio compares distances between normalized images, √(2 − 2c)
        let own_c: Vec<f32> = (0..own.len())
            .map(|i| correlation(s, own.image(i)))
            .collect();
        let (mut best, mut second, mut index) = (f32::NEG_INFINITY, f32::NEG_INFINITY, 0);
        for (i, &c) in own_c.iter().enumerate() {
            if c > best {
                (second, best, index) = (best, c, i);
            } else if c > second {
                second = c;
            }
        }
        out.own_similarity.push(best);
        out.own_index.push(index);
        out.own_l2.push(l2(s, own.image(index)));
        out.other_similarity.push(
            (0..other.len())
                .map(|i| correlation(s, other.image(i)))
                .fold(f32::NEG_INFINITY, f32::max),
        );
        let distance = |c: f32| (2.0 - 2.0 * c).max(0.0).sqrt();
        out.memorization_ratio.push(
            second
                .is_finite()
                .then(|| distance(best) / distance(second).max(1e-12)),
        );
    }
    out.median_own_similarity = median(&out.own_similarity);
    out.median_other_similarity = median(&out.other_similarity);
    out.memorized_fraction = memorized_fraction(&out.memorization_ratio);
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
        assert_eq!(nn.memorized_fraction, Some(1.0));
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        // a bias-free network's copy is a scaled one: still a copy
        let mut scaled = samples.clone();
        scaled
            .as_mut_slice()
            .iter_mut()
            .for_each(|v| *v = 0.6 * *v + 0.1);
        let nn = nearest(&scaled, &own, &other);
        assert_eq!((nn.own_index[0], nn.memorized_fraction), (1, Some(1.0)));
        assert!(nn.own_l2[0] > 0.1, "raw pixels differ: {}", nn.own_l2[0]);
        // one training image: no second-nearest, no ratio, no f_mem
        let single = nearest(&samples, &base.select(&[1]), &other);
        assert_eq!(single.memorization_ratio, [None]);
        assert_eq!(single.memorized_fraction, None);
    }

    #[test]
    fn f_mem_counts_ratios_below_a_third() {
        let r = [Some(0.1), Some(0.5), None, Some(0.3), Some(0.34)];
        assert_eq!(memorized_fraction(&r), Some(0.5));
        assert_eq!(memorized_fraction(&[None]), None);
    }

    /// The empirical-optimal denoiser of two images generates copies of them: f_mem = 1; held-out
    /// images of the same family are copies of no training image: f_mem = 0.
    #[test]
    fn f_mem_is_one_for_the_memorizer_and_zero_for_held_out_images() {
        use crate::denoise::EmpiricalOptimal;
        use crate::progress::Silent;
        use crate::sampling::Sampler;
        let base = Family::Disks(Default::default())
            .generate(16, 40, 7)
            .unwrap();
        let (train, other) = (base.select(&[0, 1]), base.select(&[2, 3]));
        let oracle = EmpiricalOptimal::new(train.clone());
        let samples = Sampler::default()
            .sample(&oracle, [1, 16, 16], 16, 0, 5, &Silent)
            .unwrap()
            .images;
        let memorizer = nearest(&samples, &train, &other);
        assert_eq!(memorizer.memorized_fraction, Some(1.0), "{memorizer:?}");
        // held-out Gaussian fields (disks can be near-duplicates of one another)
        let fields = Family::Gaussian(GaussianField::default())
            .generate(16, 40, 7)
            .unwrap();
        let (test, big_train) = (
            fields.select(&(8..40).collect::<Vec<_>>()),
            fields.select(&(0..8).collect::<Vec<_>>()),
        );
        let held_out = nearest(&test, &big_train, &other);
        assert_eq!(held_out.memorized_fraction, Some(0.0), "{held_out:?}");
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
