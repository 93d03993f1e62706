//! The Wiener filter of a stationary Gaussian field — its exact MMSE denoiser — told σ,
//! estimating it, or as the blind (and homogeneous blind) optimum over a prior on σ (and scale).

use crate::data::synthetic::{GaussianField, Hypothesis};
use crate::data::Images;
use crate::denoise::{
    check_vectors, one_image, DenoiseError, Denoiser, FiniteDifferences, JacobianAt, Linearize,
};
use rayon::prelude::*;

/// Where an oracle takes its noise level from.
#[derive(Clone, Debug, PartialEq)]
pub enum NoiseLevel {
    /// The σ the caller passes (an error when none is passed).
    Given,
    /// Estimated from each image by maximum likelihood; the passed σ is ignored. The oracle is
    /// then blind, like a trained network, which is what the samplers assume.
    Estimated,
    /// Unknown, with a prior over how the image was made (noise level, and possibly the
    /// field's scale): the posterior mean over those and x; blind.
    Prior(Vec<Hypothesis>),
}

/// The Wiener filter of a stationary Gaussian field: its exact MMSE denoiser.
pub struct Wiener {
    field: GaussianField,
    noise: NoiseLevel,
}

impl Wiener {
    /// The oracle for a field, at the noise level the caller gives.
    pub fn new(field: GaussianField) -> Self {
        Self {
            field,
            noise: NoiseLevel::Given,
        }
    }

    /// The blind oracle: each image's σ estimated by maximum likelihood.
    pub fn blind(field: GaussianField) -> Self {
        Self {
            field,
            noise: NoiseLevel::Estimated,
        }
    }

    /// The blind optimum for noise levels drawn from `prior` (σ, mass): the posterior mean over
    /// σ and x. With the prior a training run is fitted to
    /// ([`crate::train::TrainConfig::fitted_sigma_prior`]), the best any blind denoiser trained that way can
    /// do on average over that prior. At a low σ it can be worse than the noisy input: an image
    /// with little noise looks much like one with a little more.
    pub fn blind_optimum(field: GaussianField, prior: &[(f64, f64)]) -> Self {
        let hypotheses = prior
            .iter()
            .map(|&(sigma, mass)| Hypothesis {
                scale: 1.0,
                sigma,
                mass,
            })
            .collect();
        Self {
            field,
            noise: NoiseLevel::Prior(hypotheses),
        }
    }

    /// The homogeneous blind optimum: as [`Wiener::blind_optimum`], with the field's scale
    /// unknown as well (log-uniform over 1/8 … 8, noise relative to it): the best denoiser with
    /// f(a·y) = a·f(y) — what a bias-free network can at most reach — since it cannot tell a
    /// field of amplitude a with noise aσ from one of amplitude 1 with noise σ.
    pub fn homogeneous_optimum(field: GaussianField, prior: &[(f64, f64)]) -> Self {
        const SCALES: usize = 61;
        let hypotheses = (0..SCALES)
            .flat_map(|i| {
                let scale = 8f64.powf(2.0 * i as f64 / (SCALES - 1) as f64 - 1.0);
                prior
                    .iter()
                    .map(move |&(sigma, mass)| Hypothesis { scale, sigma, mass })
            })
            .collect();
        Self {
            field,
            noise: NoiseLevel::Prior(hypotheses),
        }
    }
}

impl Denoiser for Wiener {
    fn denoise(&self, y: &Images, sigma: Option<f32>) -> Result<Images, DenoiseError> {
        let [_, c, h, w] = y.shape();
        if c != 1 {
            return Err(DenoiseError::Shape {
                expected: "1 channel".into(),
                got: y.image_shape(),
            });
        }
        // the σ of a filter told it (read only by NoiseLevel::Given)
        let given = match self.noise {
            NoiseLevel::Given => sigma.ok_or(DenoiseError::NeedsSigma("the Wiener filter"))? as f64,
            _ => 0.0,
        };
        // images are independent; the posterior over a prior takes a while per image
        let out: Vec<Vec<f32>> = (0..y.len())
            .into_par_iter()
            .map(|i| {
                let img = y.image(i);
                match &self.noise {
                    NoiseLevel::Given => self.field.wiener(img, h, w, given),
                    NoiseLevel::Estimated => {
                        let s = self.field.estimate_sigma(img, h, w);
                        self.field.wiener(img, h, w, s)
                    }
                    NoiseLevel::Prior(prior) => self.field.posterior_mean(img, h, w, prior),
                }
            })
            .collect();
        Ok(Images::new(out.concat(), y.shape()))
    }

    fn name(&self) -> String {
        "wiener".into()
    }

    fn is_blind(&self) -> bool {
        self.noise != NoiseLevel::Given
    }
}

impl Linearize for Wiener {
    /// In closed form when σ is given: f(y) = m + B diag(g) Bᵀ (y − m) with B the covariance's
    /// eigenbasis (the DFT for a periodic field), so J = B diag(g) Bᵀ with the gains
    /// g = p/(p + σ²), symmetric. The blind filter's σ depends on y, so its
    /// Jacobian is taken by central differences.
    fn linearize(
        &self,
        y: &Images,
        sigma: Option<f32>,
    ) -> Result<Box<dyn JacobianAt + '_>, DenoiseError> {
        one_image(y)?;
        match self.noise {
            NoiseLevel::Estimated | NoiseLevel::Prior(_) => {
                Ok(Box::new(FiniteDifferences::new(self, y, sigma, 1e-3)?))
            }
            NoiseLevel::Given => {
                let denoised = self.denoise(y, sigma)?;
                let s = sigma.ok_or(DenoiseError::NeedsSigma("the Wiener filter"))?;
                let [_, _, h, w] = y.shape();
                let covariance = self.field.covariance(h, w);
                Ok(Box::new(WienerAt {
                    gain: covariance.wiener_gain(s as f64),
                    covariance,
                    denoised,
                }))
            }
        }
    }
}

/// The Wiener filter's Jacobian: diagonal in the covariance's eigenbasis.
struct WienerAt {
    gain: Vec<f64>,
    covariance: std::sync::Arc<crate::data::synthetic::Covariance>,
    denoised: Images,
}

impl JacobianAt for WienerAt {
    fn denoised(&self) -> &Images {
        &self.denoised
    }
    fn jvp(&self, vs: &Images) -> Images {
        check_vectors(vs, self.shape());
        let out = (0..vs.len())
            .flat_map(|k| self.covariance.filter(vs.image(k), &self.gain))
            .collect();
        Images::new(out, vs.shape())
    }
    fn vjp(&self, vs: &Images) -> Images {
        self.jvp(vs) // symmetric
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::Family;

    /// The homogeneous optimum is homogeneous (inside its range of scales) and, not knowing the
    /// field's amplitude, no better on average than the blind optimum, which is no better than
    /// the filter told σ.
    #[test]
    fn homogeneous_optimum_scales_with_its_input() {
        let field = GaussianField::default();
        let n = 12;
        let x = Family::Gaussian(field.clone()).generate(n, 300, 5).unwrap();
        let prior: Vec<(f64, f64)> = (0..60)
            .map(|j| 0.005 * 100f64.powf(j as f64 / 59.0))
            .map(|s| (s, 1.0))
            .collect();
        let homogeneous = Wiener::homogeneous_optimum(field.clone(), &prior);
        let blind = Wiener::blind_optimum(field.clone(), &prior);
        let y = crate::analysis::metrics::add_noise(&x.take(4), 0.1, 1);
        let f = homogeneous.denoise(&y, None).unwrap();
        let mut y2 = y.clone();
        y2.as_mut_slice().iter_mut().for_each(|v| *v *= 2.0);
        let f2 = homogeneous.denoise(&y2, None).unwrap();
        let err: f64 = f2
            .as_slice()
            .iter()
            .zip(f.as_slice())
            .map(|(a, b)| ((a - 2.0 * b) as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        let norm: f64 = f
            .as_slice()
            .iter()
            .map(|&v| (v as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(
            err < 1e-3 * 2.0 * norm,
            "‖f(2y) − 2f(y)‖ = {err}, ‖2f(y)‖ = {}",
            2.0 * norm
        );
        let b = blind.denoise(&y2, None).unwrap();
        let off: f64 = b
            .as_slice()
            .iter()
            .zip(f2.as_slice())
            .map(|(a, c)| ((a - c) as f64).abs())
            .sum();
        assert!(
            off > 1e-2,
            "the blind optimum knows the amplitude: it is not homogeneous"
        );
        // on average over the σ the prior spreads over (log-uniform on [0.005, 0.5])
        let (mut known, mut mb, mut mh) = (0.0, 0.0, 0.0);
        for (i, sigma) in [0.005f32, 0.02, 0.05, 0.1, 0.2, 0.5]
            .into_iter()
            .enumerate()
        {
            let y = crate::analysis::metrics::add_noise(&x, sigma, i as u64);
            let mse = |d: &Images| crate::analysis::metrics::mse(d.as_slice(), x.as_slice());
            known += mse(&Wiener::new(field.clone()).denoise(&y, Some(sigma)).unwrap());
            mb += mse(&blind.denoise(&y, None).unwrap());
            mh += mse(&homogeneous.denoise(&y, None).unwrap());
        }
        assert!(
            known < mb && mb < mh,
            "known σ {known:.4e}, blind {mb:.4e}, homogeneous {mh:.4e}"
        );
    }
}
