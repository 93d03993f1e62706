//! Denoisers whose optimality is known, the references networks are measured against: the
//! empirical optimum of a training set (the perfect memorizer), the Wiener filter of a Gaussian
//! field and its blind optima, and the MMSE denoiser of the disk family.

pub mod disks;
mod empirical;
mod wiener;

pub use disks::DiskOracle;
pub use empirical::EmpiricalOptimal;
pub use wiener::{NoiseLevel, Wiener};
