//! The one trait every denoiser meets — learned networks and closed-form oracles alike — so that
//! samplers, restorers, Jacobian tools and metrics compare them with the same code (STYLE.md §4).
//!
//! - [`Learned`]: a trained bias-free network, blind (it ignores σ).
//! - [`EmpiricalOptimal`]: the MMSE denoiser of the empirical distribution of a training set,
//!   the perfectly memorizing denoiser: x̂(y) = Σᵢ wᵢ xᵢ, wᵢ ∝ exp(−‖y − xᵢ‖²/2σ²).
//! - [`Wiener`]: the MMSE denoiser of a stationary Gaussian field.

use crate::data::synthetic::GaussianField;
use crate::data::Images;
use crate::nn::{Mode, Network};
use burn::tensor::Device;

/// Errors of denoising.
#[derive(Debug, thiserror::Error)]
pub enum DenoiseError {
    /// An oracle needs the noise level and none was given.
    #[error("{0} needs the noise level σ; pass --sigma")]
    NeedsSigma(&'static str),
    /// The images do not have the shape the denoiser was built for.
    #[error("images are {got:?} (C, H, W) but the denoiser expects {expected}")]
    Shape {
        /// What the denoiser accepts.
        expected: String,
        /// What it got.
        got: [usize; 3],
    },
}

/// A denoiser: x̂ = f(y) for a batch of noisy images.
pub trait Denoiser {
    /// Denoises each image of `y`. `sigma` is the noise level when known; blind denoisers
    /// ignore it, oracles need it.
    ///
    /// # Shapes
    /// `y`: `[n, c, h, w]` → `[n, c, h, w]`.
    fn denoise(&self, y: &Images, sigma: Option<f32>) -> Result<Images, DenoiseError>;

    /// A short name for tables and figures.
    fn name(&self) -> String;

    /// Whether the output ignores σ. Callers may then batch images whose noise levels differ;
    /// for oracles they must call once per noise level.
    fn is_blind(&self) -> bool {
        false
    }
}

/// A trained network used as a blind denoiser, in eval mode, batch by batch.
pub struct Learned {
    net: Network,
    device: Device,
    image_channels: usize,
    batch: usize,
}

impl Learned {
    /// Wraps a network living on `device` (not an autodiff device: nothing is differentiated).
    pub fn new(net: Network, device: Device, image_channels: usize) -> Self {
        Self {
            net,
            device,
            image_channels,
            batch: 64,
        }
    }

    /// Images per forward pass (memory vs speed); 64 by default.
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// The network.
    pub fn net(&self) -> &Network {
        &self.net
    }

    /// Gives the network back.
    pub fn into_net(self) -> Network {
        self.net
    }

    /// The device it runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }
}

impl Denoiser for Learned {
    fn denoise(&self, y: &Images, _sigma: Option<f32>) -> Result<Images, DenoiseError> {
        if y.shape()[1] != self.image_channels {
            return Err(DenoiseError::Shape {
                expected: format!("{} channel(s)", self.image_channels),
                got: y.image_shape(),
            });
        }
        let idx: Vec<usize> = (0..y.len()).collect();
        let parts: Vec<Images> = idx
            .chunks(self.batch)
            .map(|chunk| {
                let t = y.select(chunk).to_tensor(&self.device);
                Images::from_tensor(self.net.denoise(t, Mode::Eval))
            })
            .collect();
        Ok(Images::concat(&parts))
    }

    fn name(&self) -> String {
        "network".into()
    }

    fn is_blind(&self) -> bool {
        true
    }
}

/// The MMSE denoiser of the empirical distribution of `train` (posterior mean over the training
/// images): it reproduces training images and is what a memorizing network converges to.
pub struct EmpiricalOptimal {
    train: Images,
}

impl EmpiricalOptimal {
    /// The oracle for a training set.
    pub fn new(train: Images) -> Self {
        Self { train }
    }
}

impl Denoiser for EmpiricalOptimal {
    fn denoise(&self, y: &Images, sigma: Option<f32>) -> Result<Images, DenoiseError> {
        let sigma = sigma.ok_or(DenoiseError::NeedsSigma("the empirical-optimal denoiser"))?;
        if y.image_shape() != self.train.image_shape() {
            return Err(DenoiseError::Shape {
                expected: format!("{:?}", self.train.image_shape()),
                got: y.image_shape(),
            });
        }
        let d = y.dim();
        let two_s2 = 2.0 * (sigma as f64).powi(2);
        let mut out = Vec::with_capacity(y.len() * d);
        for i in 0..y.len() {
            let yi = y.image(i);
            // log-weights, then a stable softmax
            let logw: Vec<f64> = (0..self.train.len())
                .map(|k| {
                    let dist: f64 = yi
                        .iter()
                        .zip(self.train.image(k))
                        .map(|(a, b)| ((a - b) as f64).powi(2))
                        .sum();
                    -dist / two_s2.max(f64::MIN_POSITIVE)
                })
                .collect();
            let m = logw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let w: Vec<f64> = logw.iter().map(|l| (l - m).exp()).collect();
            let z: f64 = w.iter().sum();
            let mut xhat = vec![0.0f64; d];
            for (k, wk) in w.iter().enumerate() {
                if *wk / z < 1e-12 {
                    continue;
                }
                for (acc, v) in xhat.iter_mut().zip(self.train.image(k)) {
                    *acc += wk / z * *v as f64;
                }
            }
            out.extend(xhat.into_iter().map(|v| v as f32));
        }
        Ok(Images::new(out, y.shape()))
    }

    fn name(&self) -> String {
        "empirical-optimal".into()
    }
}

/// Where an oracle takes its noise level from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoiseLevel {
    /// The σ the caller passes (an error when none is passed).
    Given,
    /// Estimated from each image by maximum likelihood; the passed σ is ignored. The oracle is
    /// then blind, like a trained network, which is what the samplers assume.
    Estimated,
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
        let mut out = Vec::with_capacity(y.as_slice().len());
        for i in 0..y.len() {
            let s = match self.noise {
                NoiseLevel::Given => {
                    sigma.ok_or(DenoiseError::NeedsSigma("the Wiener filter"))? as f64
                }
                NoiseLevel::Estimated => self.field.estimate_sigma(y.image(i), h, w),
            };
            out.extend(self.field.wiener(y.image(i), h, w, s));
        }
        Ok(Images::new(out, y.shape()))
    }

    fn name(&self) -> String {
        "wiener".into()
    }

    fn is_blind(&self) -> bool {
        self.noise == NoiseLevel::Estimated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::Family;

    #[test]
    fn empirical_optimal_limits() {
        let train = Family::Disks(Default::default()).generate(8, 5, 1).unwrap();
        let oracle = EmpiricalOptimal::new(train.clone());
        // σ → 0: the nearest training image
        let mut y = train.select(&[3]);
        y.as_mut_slice().iter_mut().for_each(|v| *v += 0.01);
        let near = oracle.denoise(&y, Some(1e-3)).unwrap();
        for (a, b) in near.image(0).iter().zip(train.image(3)) {
            assert!((a - b).abs() < 1e-5);
        }
        // σ → ∞: the training mean
        let far = oracle.denoise(&y, Some(1e4)).unwrap();
        for p in 0..train.dim() {
            let mean: f32 = (0..5).map(|k| train.image(k)[p]).sum::<f32>() / 5.0;
            assert!((far.image(0)[p] - mean).abs() < 1e-4);
        }
        assert!(oracle.denoise(&y, None).is_err());
    }

    #[test]
    fn empirical_optimal_mse_is_sigma_squared_times_divergence() {
        // For the exact MMSE denoiser f* of any prior, E‖f*(y) − x‖² = σ² E[tr ∇f*(y)]
        // (Miyasawa/Stein). Check it on the empirical distribution of 6 images of 4×4.
        use crate::analysis::jacobian::finite_difference;
        use crate::rng::{stream, Purpose};
        use rand::Rng;
        use rand_distr::{Distribution, StandardNormal};
        let train = Family::Disks(Default::default()).generate(4, 6, 3).unwrap();
        let oracle = EmpiricalOptimal::new(train.clone());
        let sigma = 0.3f32;
        let trials = 400;
        let mut diffs = Vec::with_capacity(trials);
        for t in 0..trials {
            let mut rng = stream(9, Purpose::Probe, t as u64);
            let k = rng.random_range(0..train.len());
            let mut y = train.select(&[k]);
            for v in y.as_mut_slice() {
                let z: f32 = StandardNormal.sample(&mut rng);
                *v += sigma * z;
            }
            let x_hat = oracle.denoise(&y, Some(sigma)).unwrap();
            let err: f64 = crate::analysis::metrics::mse(x_hat.as_slice(), train.image(k)) * 16.0;
            let jac = finite_difference(&oracle, &y, Some(sigma), 1e-3).unwrap();
            let div: f64 = (0..16).map(|i| jac[i * 16 + i] as f64).sum();
            diffs.push(err - (sigma as f64).powi(2) * div);
        }
        let n = trials as f64;
        let mean = diffs.iter().sum::<f64>() / n;
        let se = (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt();
        assert!(mean.abs() < 4.0 * se, "E[MSE − σ² tr J] = {mean} ± {se}");
    }
}
