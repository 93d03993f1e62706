//! Measuring denoisers: denoising quality, image similarity, Jacobians and their spectra.

pub mod jacobian;
pub mod lanczos;
pub mod metrics;
pub mod similarity;
pub mod spectrum;
