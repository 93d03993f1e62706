//! # tweedie
//!
//! Image denoisers as generative models, after *Generalization in diffusion models arises from
//! geometry-adaptive harmonic representations* (Kadkhodaie, Guth, Simoncelli & Mallat, ICLR
//! 2024). A blind, bias-free denoiser f gives the score of the noisy image density through
//! Miyasawa/Tweedie's identity f(y) = y + σ²∇log p_σ(y), so it is also a diffusion model.
//!
//! The flow (DESIGN.md): the binary turns flags into a configuration and calls one library
//! function; everything below it is here.
//!
//! - [`data`]: image sources, synthetic families with known optimal denoisers, disjoint splits.
//! - [`nn`]: the bias-free networks (BF-UNet, BF-CNN), their checkpoints and linearization
//!   (their CPU kernels are private to it).
//! - [`train`]: blind training, resumable bit for bit, with the run folder and its records
//!   ([`train::record`]).
//! - [`denoise`]: the [`Denoiser`] trait every denoiser meets — networks and oracles (empirical
//!   optimal, Wiener) — and [`denoise::Linearize`] for exact Jacobian products.
//! - [`sampling`]: the [`sampling::Sampler`]s (stochastic ascent, probability-flow Euler) and
//!   restoration of linear inverse problems.
//! - [`analysis`]: denoising quality, memorization measures, Jacobians and their spectra.
//! - [`experiments`]: the paper's experiments, each `Config` → `run` → `Record`.
//! - [`report`]: figures and pages drawn from records alone.
//! - Shared pieces: [`interrupt`] (SIGINT/SIGTERM checkpoint and stop), [`config`] (the error naming a bad field), [`rng`] (seeded streams keyed by
//!   purpose and identity), [`similarity`], [`fourier`], [`io`] (atomic writes), [`lock`] (one writer per folder), [`resources`] (memory estimates), [`progress`],
//!   [`device`].
//!
//! ```
//! use tweedie::data::synthetic::{Family, GaussianField};
//! use tweedie::denoise::{Denoiser, Wiener};
//! use tweedie::analysis::metrics::denoising_table;
//!
//! // The Wiener filter is the exact MMSE denoiser of a Gaussian field.
//! let field = GaussianField::default();
//! let clean = Family::Gaussian(field.clone()).generate(16, 8, 0).unwrap();
//! let table = denoising_table(&Wiener::new(field), &clean, &[0.1], 1).unwrap();
//! assert!(table[0].psnr > table[0].input_psnr);
//! ```
#![warn(missing_docs)]

pub mod analysis;
pub mod config;
pub mod data;
pub mod denoise;
pub mod device;
pub mod experiments;
pub mod fourier;
pub mod interrupt;
pub mod io;
pub mod lock;
pub mod nn;
pub mod progress;
pub mod report;
pub mod resources;
pub mod rng;
pub mod sampling;
pub mod similarity;
pub mod train;

pub use data::Images;
pub use denoise::Denoiser;
pub use device::{Adapter, DeviceSpec};
pub use nn::{Mode, NetConfig, Network};
