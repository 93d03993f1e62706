//! The CPU backend behind the networks: burn backend extensions for `flex` (with and without
//! autodiff) whose kernels we wrote because burn's generic ones were the bottleneck — Winograd
//! 3×3 convolutions ([`conv`], [`winograd`], and [`winograd_f4`] for inference), 2×2
//! upsampling as a GEMM ([`upsample`]) and the fused bias-free norm + ReLU ([`norm_relu`]). On other devices each operation steps aside to
//! burn's own. Private to `nn`: the networks are the interface.

mod bilinear;
pub(super) mod conv;
mod host;
pub(super) mod norm_relu;
pub(super) mod upsample;
mod winograd;
mod winograd_f4;
