//! Drawing images from the prior implicit in a denoiser, and solving linear inverse problems
//! with it.
//!
//! By Miyasawa/Tweedie, f(y) − y = σ²∇log p_σ(y): the residual of a blind MMSE denoiser is a
//! scaled score. [`ascent`] follows it with the stochastic coarse-to-fine gradient ascent of
//! Kadkhodaie & Simoncelli (2021), unconstrained (synthesis) or constrained by a linear
//! measurement ([`operators`]); [`euler`] integrates the probability-flow ODE with the same
//! denoiser for comparison. Samplers are plain functions of (denoiser, parameters, seed).

pub mod ascent;
pub mod euler;
pub mod operators;

use crate::denoise::DenoiseError;

/// Errors of sampling and restoration.
#[derive(Debug, thiserror::Error)]
pub enum SamplingError {
    /// The denoiser failed.
    #[error(transparent)]
    Denoise(#[from] DenoiseError),
    /// Out-of-range parameters.
    #[error("{0}")]
    Invalid(String),
    /// A measurement does not fit its operator.
    #[error("measurement has {got} values but the operator produces {expected}")]
    MeasurementSize {
        /// Values the operator produces.
        expected: usize,
        /// Values given.
        got: usize,
    },
}
