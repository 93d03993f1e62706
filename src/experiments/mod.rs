//! The paper's experiments, each one file of the same shape (DESIGN.md): a `Config` (serde,
//! `validate()` checks everything before any work), `run(&Config, …) -> Record` (serde, the JSON
//! the folder keeps), nothing else — no plotting, no HTML, no printing: `report` draws each
//! record's page from the folder alone. They compose the library's parts; the measures they
//! record live in `analysis`.
//!
//! - [`dir`]: the folder every experiment keeps, and the shape they share.
//! - [`bench`](mod@bench): speed of the paper's network and of the experiments' workloads,
//!   against the machine.
//! - [`eval`]: a run's denoising quality on training and held-out images, beside the optimum.
//! - [`demo`]: the generalization study at a memorizing and a generalizing N, with Jacobians.
//! - [`generalization`]: memorization → generalization over training-set sizes N.
//! - [`jacobian`]: eigenvalues, eigenvectors and tr J of a denoiser's Jacobian at a noisy image.
//! - [`restore`]: inverse problems solved with a denoiser as prior, scored against references.
//! - [`sample`]: samples from a run's network, with either sampler.
//! - [`optimality`]: networks against the optimum on families where it is known.

pub mod bench;
pub mod demo;
pub mod dir;
pub mod eval;
pub mod generalization;
pub mod jacobian;
pub mod optimality;
pub mod restore;
pub mod sample;
