//! Drawing images from the prior implicit in a denoiser, and solving linear inverse problems
//! with it.
//!
//! By Miyasawa/Tweedie, f(y) − y = σ²∇log p_σ(y): the residual of a blind MMSE denoiser is a
//! scaled score. [`ascent`] follows it with the stochastic coarse-to-fine gradient ascent of
//! Kadkhodaie & Simoncelli (2021), unconstrained (synthesis) or constrained by a linear
//! measurement ([`operators`]); [`euler`] integrates the probability-flow ODE with the same
//! denoiser for comparison. [`Sampler`] is the choice between them as data, with one
//! [`Sampler::sample`] for every command that draws samples. Samplers are plain functions of
//! (denoiser, parameters, seed).

pub mod ascent;
pub mod euler;
pub mod operators;

use crate::config::InvalidField;
use crate::data::Images;
use crate::denoise::{DenoiseError, Denoiser};
use crate::progress::Progress;
use ascent::{AscentParams, Trajectory};
use euler::EulerParams;
use serde::{Deserialize, Serialize};

/// Errors of sampling and restoration.
#[derive(Debug, thiserror::Error)]
pub enum SamplingError {
    /// The denoiser failed.
    #[error(transparent)]
    Denoise(#[from] DenoiseError),
    /// Out-of-range parameters.
    #[error("invalid sampler setting")]
    Invalid(#[from] InvalidField),
    /// An operator does not fit the images.
    #[error("the operator acts on {operator} values but images have {image}")]
    OperatorSize {
        /// Values the operator acts on.
        operator: usize,
        /// Values per image.
        image: usize,
    },
    /// A measurement does not fit its operator.
    #[error("measurement has {got} values but the operator produces {expected}")]
    MeasurementSize {
        /// Values the operator produces.
        expected: usize,
        /// Values given.
        got: usize,
    },
}

/// How to draw samples from a denoiser's prior: the sampler and its parameters, as stored in
/// configurations (`{"kind": "ascent", …}`).
///
/// The paper uses the stochastic ascent. Its injected noise is shared by two denoisers sampled
/// with the same seed, but every small difference between them is amplified along the way; the
/// deterministic Euler sampler from the same initial noise separates "same function" from
/// "same trajectory".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Sampler {
    /// Stochastic coarse-to-fine ascent (Kadkhodaie & Simoncelli 2021).
    Ascent(AscentParams),
    /// Probability-flow Euler steps on a geometric σ schedule.
    Euler(EulerParams),
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler::Ascent(AscentParams::default())
    }
}

/// Samples and, for the ascent, how each one's trajectory went.
pub struct Samples {
    /// The samples, `[count, c, h, w]`.
    pub images: Images,
    /// One per sample for the ascent; empty for Euler (its schedule is fixed).
    pub trajectories: Vec<Trajectory>,
}

impl Sampler {
    /// Images denoised together (memory against speed; the samples do not depend on it).
    pub fn batch(&self) -> usize {
        match self {
            Sampler::Ascent(p) => p.batch,
            Sampler::Euler(p) => p.batch,
        }
    }

    /// Checks the parameters (before any work that would be lost if they were wrong).
    pub fn validate(&self) -> Result<(), InvalidField> {
        match self {
            Sampler::Ascent(p) => p.validate(),
            Sampler::Euler(p) => p.validate(),
        }
    }

    /// Draws `count` samples of shape `[c, h, w]`; sample k starts from the noise of stream
    /// (seed, Sample, first + k), whichever sampler and batch size.
    pub fn sample(
        &self,
        denoiser: &impl Denoiser,
        shape: [usize; 3],
        count: usize,
        first: u64,
        seed: u64,
        progress: &dyn Progress,
    ) -> Result<Samples, SamplingError> {
        Ok(match self {
            Sampler::Ascent(p) => {
                let out = ascent::sample(denoiser, shape, count, first, p, seed, progress)?;
                Samples {
                    images: out.images,
                    trajectories: out.trajectories,
                }
            }
            Sampler::Euler(p) => Samples {
                images: euler::sample(denoiser, shape, count, first, p, seed, progress)?,
                trajectories: Vec::new(),
            },
        })
    }
}
