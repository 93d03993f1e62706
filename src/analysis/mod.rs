//! Measuring denoisers: denoising quality, image similarity, Jacobians.

pub mod jacobian;
pub mod metrics;
pub mod similarity;
