//! Measuring denoisers: denoising quality ([`metrics`]), memorization ([`memorization`]) with
//! bootstrap intervals over replicated pairs ([`bootstrap`]),
//! Jacobians ([`jacobian`]) and their spectra ([`spectrum`], [`lanczos`]), rates ([`rate`]), the
//! noise level of an image ([`noise`]). Everything here takes
//! a [`crate::denoise::Denoiser`] (or [`crate::denoise::Linearize`]), never a network type.

pub mod bootstrap;
pub mod jacobian;
pub mod lanczos;
pub mod memorization;
pub mod metrics;
pub mod noise;
pub mod quality;
pub mod rate;
pub mod spectrum;
