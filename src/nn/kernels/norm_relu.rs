//! Bias-free batch norm followed by ReLU in training mode, fused into one operation with a
//! hand-written backward pass, on the CPU backend (a burn backend extension).
//!
//! y = max(0, x·γ_c/sd_c) with sd_c the standard deviation of channel c over the batch and the
//! image (no mean subtracted: see [`super::BfNorm`]). Composed from tensor operations, the
//! statistics, the scaling, the ReLU and their gradients made about eleven passes over each
//! activation; fused, the forward pass reads x twice (statistics, output) and the backward pass
//! reads it twice (one reduction, the gradient). With S_c = Σ g·x over the pixels where the ReLU
//! passed (g the output gradient), M the pixels per channel and μ_c the channel mean:
//! ∂L/∂x = g·γ/sd − γ·S/(M·sd³)·(x − μ) where the ReLU passed (the first term only there; the
//! second everywhere), ∂L/∂γ = S/sd.

use super::buffer::par_filled;
use super::host::{dims, flex, host};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, AutodiffBackend, Backend, Dispatch, Flex};
use burn::tensor::{DType, Shape, Tensor};
use rayon::prelude::*;

/// Added to the batch variance before the square root (as in [`super::BfNorm`]).
pub const EPS: f64 = 1e-5;

/// Per-channel mean and standard deviation (√(E\[x²\] − μ² + EPS)) of `x` `[n, c, plane]`,
/// accumulated in f64.
pub fn moments(x: &[f32], n: usize, c: usize, plane: usize) -> (Vec<f32>, Vec<f32>) {
    let m = (n * plane) as f64;
    (0..c)
        .into_par_iter()
        .map(|ch| {
            let (mut sum, mut sum_sq) = (0.0f64, 0.0f64);
            for b in 0..n {
                let p = &x[(b * c + ch) * plane..][..plane];
                sum += lane_sum(p, |v| v) as f64;
                sum_sq += lane_sum(p, |v| v * v) as f64;
            }
            let mean = sum / m;
            let var = (sum_sq / m - mean * mean).max(0.0);
            (mean as f32, (var + EPS).sqrt() as f32)
        })
        .unzip()
}

/// y = max(0, x·γ_c/sd_c).
pub fn forward(x: &[f32], gamma: &[f32], sd: &[f32], c: usize, plane: usize) -> Vec<f32> {
    par_filled(x.len(), plane, |k, y| {
        let s = gamma[k % c] / sd[k % c];
        for (y, x) in y.iter_mut().zip(&x[k * plane..]) {
            *y = (x * s).max(0.0);
        }
    })
}

/// (∂L/∂x, ∂L/∂γ) from the output gradient `dy` (see the module's formulas).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    sd: &[f32],
    dy: &[f32],
    n: usize,
    c: usize,
    plane: usize,
) -> (Vec<f32>, Vec<f32>) {
    let m = (n * plane) as f32;
    let planes = |ch: usize| (0..n).map(move |b| (b * c + ch) * plane);
    // S_c = Σ g·x where the ReLU passed
    let s_sum: Vec<f32> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let s = gamma[ch] / sd[ch];
            planes(ch)
                .map(|start| {
                    let (x, g) = (&x[start..][..plane], &dy[start..][..plane]);
                    lane_dot(x, g, |x, g| passed(x * s) * g * x) as f64
                })
                .sum::<f64>() as f32
        })
        .collect();
    let dx = par_filled(x.len(), plane, |k, dx| {
        let ch = k % c;
        let s = gamma[ch] / sd[ch];
        let coef = gamma[ch] * s_sum[ch] / (m * sd[ch] * sd[ch] * sd[ch]);
        let (x, g) = (&x[k * plane..][..plane], &dy[k * plane..][..plane]);
        for ((dx, x), g) in dx.iter_mut().zip(x).zip(g) {
            *dx = passed(x * s) * g * s - coef * (x - mean[ch]);
        }
    });
    let dgamma = s_sum.iter().zip(sd).map(|(s, sd)| s / sd).collect();
    (dx, dgamma)
}

/// 1 where the ReLU passes `z`, else 0 (a select, so that loops using it vectorize).
#[inline(always)]
fn passed(z: f32) -> f32 {
    if z > 0.0 {
        1.0
    } else {
        0.0
    }
}

/// Lanes of partial sums: a plain fold over f32 is a serial chain the compiler may not
/// reorder, so it runs one value at a time. The order is fixed, so results are reproducible.
const LANES: usize = 16;

/// Σ f(v) over `p`, in [`LANES`] partial sums (f32: a plane holds at most ~10⁵ values; the
/// planes are summed in f64).
fn lane_sum(p: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = p.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|v| f(*v)).sum();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += f(*v);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Σ f(a, b) over pairs of `a` and `b`, in [`LANES`] partial sums.
fn lane_dot(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(a, b)| f(*a, *b))
        .sum();
    for (a, b) in ca.zip(cb) {
        for ((s, a), b) in acc.iter_mut().zip(a).zip(b) {
            *s += f(*a, *b);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Kernels a backend provides for the extension's forward and backward passes.
pub trait NormReluKernels: Backend {
    /// (y, mean, sd) for `x` `[n, c, h, w]` and gains `gamma` `[c]`.
    fn norm_relu_forward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
    /// (∂L/∂x, ∂L/∂γ) from ∂L/∂y and the forward pass's statistics.
    fn norm_relu_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        sd: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// The extension: routed to the CPU backend (with or without autodiff).
#[backend_extension(Flex, Autodiff)]
pub trait NormRelu: Backend {
    /// (max(0, x·γ/sd), sd) with sd the batch standard deviation per channel (not tracked).
    fn norm_relu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

fn vector(data: Vec<f32>) -> FlexTensor {
    let len = data.len();
    FlexTensor::new(
        burn::tensor::Bytes::from_elems(data),
        Layout::contiguous(Shape::from(vec![len])),
        DType::F32,
    )
}

impl NormReluKernels for Flex {
    fn norm_relu_forward(x: FlexTensor, gamma: FlexTensor) -> (FlexTensor, FlexTensor, FlexTensor) {
        let [n, c, h, w] = dims(&x);
        let xs = host(&x);
        let (mean, sd) = moments(&xs, n, c, h * w);
        let y = forward(&xs, &host(&gamma), &sd, c, h * w);
        (flex(y, [n, c, h, w]), vector(mean), vector(sd))
    }

    fn norm_relu_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        mean: FlexTensor,
        sd: FlexTensor,
        dy: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        let [n, c, h, w] = dims(&x);
        let (dx, dgamma) = backward(
            &host(&x),
            &host(&gamma),
            &host(&mean),
            &host(&sd),
            &host(&dy),
            n,
            c,
            h * w,
        );
        (flex(dx, [n, c, h, w]), vector(dgamma))
    }
}

impl NormRelu for Flex {
    fn norm_relu(x: FlexTensor, gamma: FlexTensor) -> (FlexTensor, FlexTensor) {
        let (y, _, sd) = Self::norm_relu_forward(x, gamma);
        (y, sd)
    }
}

#[derive(Debug)]
struct NormReluBackward;

impl<B: NormReluKernels> Backward<B, 2> for NormReluBackward {
    type State = (NodeId, NodeId, FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, ckpt: &mut Checkpointer) {
        let [node_x, node_gamma] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x_state, gamma_state, mean, sd) = ops.state;
        let x: FloatTensor<B> = ckpt.retrieve_node_output(x_state);
        let gamma: FloatTensor<B> = ckpt.retrieve_node_output(gamma_state);
        let (dx, dgamma) = B::norm_relu_backward(x, gamma, mean, sd, dy);
        if let Some(node) = node_gamma {
            grads.register::<B>(node.id, dgamma);
        }
        if let Some(node) = node_x {
            grads.register::<B>(node.id, dx);
        }
    }
}

impl<B: NormReluKernels, C: CheckpointStrategy> NormRelu for Autodiff<B, C> {
    fn norm_relu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        match NormReluBackward
            .prepare::<C>([x.node(), gamma.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let gamma_state = prep.checkpoint(&gamma);
                let (y, mean, sd) =
                    B::norm_relu_forward(x.into_primitive(), gamma.into_primitive());
                let state = (x_state, gamma_state, mean, sd.clone());
                (prep.finish(state, y), Self::from_inner(sd))
            }
            OpsKind::UnTracked(prep) => {
                let (y, _, sd) = B::norm_relu_forward(x.into_primitive(), gamma.into_primitive());
                (prep.finish(y), Self::from_inner(sd))
            }
        }
    }
}

/// (max(0, x·γ/sd), sd) on the CPU backend with batch statistics; `None` on other devices
/// and dtypes, where the caller composes the norm and the ReLU from tensor operations.
pub fn norm_relu(x: Tensor<4>, gamma: Tensor<1>) -> Option<(Tensor<4>, Tensor<1>)> {
    if !super::host::on_flex(&x) {
        return None;
    }
    let (y, sd) = <Dispatch as NormRelu>::norm_relu(x.into_dispatch(), gamma.into_dispatch());
    Some((Tensor::from_dispatch(y), Tensor::from_dispatch(sd)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::activation::relu;
    use burn::tensor::{Device, Distribution};

    /// The fused operation against the same function composed from tensor operations: output,
    /// statistics, and both gradients.
    #[test]
    fn matches_the_composed_norm_and_relu() {
        let device = Device::flex().autodiff();
        let x: Tensor<4> = Tensor::random([3, 5, 6, 7], Distribution::Normal(0.3, 1.5), &device);
        let gamma: Tensor<1> = Tensor::random([5], Distribution::Normal(0.0, 1.0), &device);
        let dy: Tensor<4> = Tensor::random([3, 5, 6, 7], Distribution::Normal(0.0, 1.0), &device);
        let run = |fused: bool| {
            let x = x.clone().detach().require_grad();
            let gamma = gamma.clone().detach().require_grad();
            let (y, sd) = if fused {
                norm_relu(x.clone(), gamma.clone()).expect("CPU backend")
            } else {
                let mean = x.clone().mean_dims(&[0, 2, 3]);
                let mean_sq = x.clone().square().mean_dims(&[0, 2, 3]);
                let sd = (mean_sq - mean.square()).add_scalar(EPS).sqrt();
                let y = relu(x.clone() * (gamma.clone().reshape([1, 5, 1, 1]) / sd.clone()));
                (y, sd.reshape([5]))
            };
            let grads = (y.clone() * dy.clone()).sum().backward();
            let dx = x.grad(&grads).expect("x tracked");
            let dgamma = gamma.grad(&grads).expect("gamma tracked");
            (y.detach(), sd.detach(), dx, dgamma)
        };
        let (y1, sd1, dx1, dg1) = run(true);
        let (y2, sd2, dx2, dg2) = run(false);
        let diff4 = |a: Tensor<4>, b: Tensor<4>| -> f32 { (a - b).abs().max().into_scalar() };
        let diff1 = |a: Tensor<1>, b: Tensor<1>| -> f32 { (a - b).abs().max().into_scalar() };
        assert!(diff4(y1, y2) < 1e-4);
        assert!(diff1(sd1, sd2) < 1e-5);
        let dx_err = diff4(dx1, dx2);
        assert!(dx_err < 1e-4, "input gradient differs by {dx_err}");
        assert!(diff1(dg1, dg2) < 1e-3);
    }
}
