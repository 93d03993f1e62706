//! A deterministic sampler for comparison with the stochastic ascent: Euler steps of the
//! probability-flow ODE dx/dσ = (x − f(x))/σ (Song et al. 2021; Karras et al. 2022, EDM's
//! Algorithm 1 without the second-order correction), driven by the same blind denoiser on a
//! geometric σ schedule. The only randomness is the initial noise of sample k, from stream
//! (seed, Sample, k), as in the ascent — so the two samplers start from the same noise.

use super::SamplingError;
use crate::config::{check, InvalidField};
use crate::data::Images;
use crate::denoise::Denoiser;
use crate::progress::Progress;
use crate::rng::{stream, Purpose};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// Parameters of the Euler sampler.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EulerParams {
    /// Noise level at the start.
    pub sigma_max: f64,
    /// Noise level of the last denoising.
    pub sigma_min: f64,
    /// Number of Euler steps.
    pub steps: usize,
    /// Mean of the initial image.
    pub init_mean: f64,
    /// Images denoised together.
    pub batch: usize,
}

impl Default for EulerParams {
    fn default() -> Self {
        Self {
            sigma_max: 1.0,
            sigma_min: 0.01,
            steps: 100,
            init_mean: 0.5,
            batch: 64,
        }
    }
}

impl EulerParams {
    /// Checks ranges before sampling.
    pub fn validate(&self) -> Result<(), InvalidField> {
        check(
            self.sigma_max > 0.0 && self.sigma_max.is_finite(),
            "sampler.sigma_max",
            self.sigma_max,
            "must be positive",
        )?;
        check(
            self.sigma_min > 0.0 && self.sigma_min < self.sigma_max,
            "sampler.sigma_min",
            self.sigma_min,
            format!("must be in (0, sigma_max = {})", self.sigma_max),
        )?;
        check(self.steps > 0, "sampler.steps", self.steps, "must be ≥ 1")?;
        check(self.batch > 0, "sampler.batch", self.batch, "must be ≥ 1")
    }
}

/// The geometric schedule σ₀ = σ_max > … > σ_N = σ_min.
pub fn schedule(p: &EulerParams) -> Vec<f64> {
    let n = p.steps.max(1);
    (0..=n)
        .map(|i| p.sigma_max * (p.sigma_min / p.sigma_max).powf(i as f64 / n as f64))
        .collect()
}

/// Draws `count` samples, sample k from stream (seed, Sample, first + k).
pub fn sample(
    denoiser: &impl Denoiser,
    shape: [usize; 3],
    count: usize,
    first: u64,
    params: &EulerParams,
    seed: u64,
    progress: &dyn Progress,
) -> Result<Images, SamplingError> {
    params.validate()?;
    let [c, h, w] = shape;
    let d = c * h * w;
    let sigmas = schedule(params);
    let mut parts = Vec::new();
    progress.start("sampling (Euler)", count as u64);
    for start in (0..count).step_by(params.batch.max(1)) {
        let n = params.batch.max(1).min(count - start);
        let mut x: Vec<f32> = (0..n)
            .flat_map(|k| {
                let mut rng = stream(seed, Purpose::Sample, first + (start + k) as u64);
                (0..d)
                    .map(move |_| {
                        let z: f64 = StandardNormal.sample(&mut rng);
                        (params.init_mean + params.sigma_max * z) as f32
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        for i in 0..params.steps {
            let (s, s_next) = (sigmas[i], sigmas[i + 1]);
            let f = denoiser.denoise(&Images::new(x.clone(), [n, c, h, w]), Some(s as f32))?;
            let step = ((s_next - s) / s) as f32;
            x.iter_mut()
                .zip(f.as_slice())
                .for_each(|(xv, fv)| *xv += step * (*xv - fv));
        }
        let last =
            denoiser.denoise(&Images::new(x, [n, c, h, w]), Some(params.sigma_min as f32))?;
        parts.push(last);
        progress.update((start + n) as u64, "");
    }
    progress.finish();
    Ok(Images::concat(&parts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::GaussianField;
    use crate::denoise::Wiener;
    use crate::progress::Silent;

    #[test]
    fn euler_on_a_gaussian_field_gives_its_variance() {
        // For a Gaussian prior the probability-flow map is linear and sends N(m, σ_max² + C) to
        // N(m, σ_min² + C) up to discretization: pixel variance ≈ sd².
        let f = GaussianField::default();
        let p = EulerParams {
            steps: 60,
            ..Default::default()
        };
        let x = sample(&Wiener::new(f.clone()), [1, 16, 16], 64, 0, &p, 2, &Silent).unwrap();
        let var = x
            .as_slice()
            .iter()
            .map(|v| (*v as f64 - 0.5).powi(2))
            .sum::<f64>()
            / x.as_slice().len() as f64;
        assert!(
            (var.sqrt() - f.sd).abs() < 0.25 * f.sd,
            "sd {} vs {}",
            var.sqrt(),
            f.sd
        );
        let again = sample(&Wiener::new(f), [1, 16, 16], 64, 0, &p, 2, &Silent).unwrap();
        assert_eq!(x, again);
    }
}
