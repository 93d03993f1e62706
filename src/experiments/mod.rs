//! Experiments of the GAHB paper, composed from the library's parts (no new mathematics here).

pub mod generalization;
