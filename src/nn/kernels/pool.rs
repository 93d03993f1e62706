//! 2×2 average pooling with stride 2 — the BF-UNet's downsampling — and its backward pass, on
//! the CPU backend (a burn backend extension).
//!
//! burn's CPU backend runs it as a general 3-d pooling, whose backward pass alone took about 3%
//! of a training step of the paper's network in `perf`; here each output is the mean of its
//! window, and the gradient spreads each value over its window, a quarter each. Odd sides lose
//! their last row or column, as burn's pooling without padding does.

use super::buffer::par_filled;
use super::host::{dims, flex, host, on_flex};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex, TensorMetadata};
use burn::tensor::Tensor;

/// Means of the 2×2 windows of `x` `[n, c, h, w]`: `[n, c, h/2, w/2]` (sides rounded down).
pub fn forward(x: &[f32], [n, c, h, w]: [usize; 4]) -> Vec<f32> {
    let (oh, ow) = (h / 2, w / 2);
    par_filled(n * c * oh * ow, oh * ow, |plane, out| {
        let x = &x[plane * h * w..][..h * w];
        for (i, row) in out.chunks_exact_mut(ow).enumerate() {
            let (top, bottom) = (&x[2 * i * w..][..2 * ow], &x[(2 * i + 1) * w..][..2 * ow]);
            for ((v, t), b) in row
                .iter_mut()
                .zip(top.chunks_exact(2))
                .zip(bottom.chunks_exact(2))
            {
                *v = 0.25 * ((t[0] + t[1]) + (b[0] + b[1]));
            }
        }
    })
}

/// ∂L/∂x `[n, c, h, w]` from ∂L/∂y `[n, c, h/2, w/2]`: the adjoint of [`forward`].
pub fn backward(dy: &[f32], [n, c, h, w]: [usize; 4]) -> Vec<f32> {
    let (oh, ow) = (h / 2, w / 2);
    if oh * ow == 0 {
        // no window: nothing reached the output
        return vec![0.0; n * c * h * w];
    }
    par_filled(n * c * h * w, h * w, |plane, dx| {
        let dy = &dy[plane * oh * ow..][..oh * ow];
        for (i, g) in dy.chunks_exact(ow).enumerate() {
            for r in 0..2 {
                let row = &mut dx[(2 * i + r) * w..][..2 * ow];
                for (pair, g) in row.chunks_exact_mut(2).zip(g) {
                    pair.fill(0.25 * g);
                }
            }
        }
    })
}

/// The CPU backend's kernels, for the extension and its backward pass.
pub trait AvgPoolKernels: Backend {
    /// [`forward`].
    fn avg_pool_forward(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// [`backward`], for an input of shape `input`.
    fn avg_pool_backward(dy: FloatTensor<Self>, input: [usize; 4]) -> FloatTensor<Self>;
}

/// The extension: routed to the CPU backend (with or without autodiff).
#[backend_extension(Flex, Autodiff)]
pub trait AvgPool: Backend {
    /// 2×2 average pooling, stride 2.
    fn avg_pool_2x2(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl AvgPoolKernels for Flex {
    fn avg_pool_forward(x: FlexTensor) -> FlexTensor {
        let [n, c, h, w] = dims(&x);
        flex(forward(&host(&x), [n, c, h, w]), [n, c, h / 2, w / 2])
    }

    fn avg_pool_backward(dy: FlexTensor, input: [usize; 4]) -> FlexTensor {
        flex(backward(&host(&dy), input), input)
    }
}

impl AvgPool for Flex {
    fn avg_pool_2x2(x: FlexTensor) -> FlexTensor {
        Self::avg_pool_forward(x)
    }
}

#[derive(Debug)]
struct AvgPoolBackward;

impl<B: AvgPoolKernels> Backward<B, 1> for AvgPoolBackward {
    /// The input's shape.
    type State = [usize; 4];

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::avg_pool_backward(dy, ops.state));
        }
    }
}

impl<B: AvgPoolKernels, C: CheckpointStrategy> AvgPool for Autodiff<B, C> {
    fn avg_pool_2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match AvgPoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = x.into_primitive();
                let s = x.shape();
                let input = [s[0], s[1], s[2], s[3]];
                prep.finish(input, B::avg_pool_forward(x))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::avg_pool_forward(x.into_primitive())),
        }
    }
}

/// 2×2 average pooling on the CPU backend; `None` on other devices and dtypes, where the
/// caller uses burn's pooling.
pub fn avg_pool_2x2(x: Tensor<4>) -> Option<Tensor<4>> {
    if !on_flex(&x) {
        return None;
    }
    let y = <Dispatch as AvgPool>::avg_pool_2x2(x.into_dispatch());
    Some(Tensor::from_dispatch(y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::pool::AvgPool2dConfig;
    use burn::tensor::{Device, Distribution};

    /// Output and input gradient against burn's `AvgPool2d`, on even and odd sides.
    #[test]
    fn matches_burn_average_pooling_forward_and_backward() {
        let device = Device::flex().autodiff();
        let pool = AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
        for [h, w] in [[6, 8], [7, 5]] {
            let x: Tensor<4> =
                Tensor::random([2, 3, h, w], Distribution::Normal(0.0, 1.0), &device);
            let dy: Tensor<4> = Tensor::random(
                [2, 3, h / 2, w / 2],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let run = |ours: bool| {
                let x = x.clone().detach().require_grad();
                let y = if ours {
                    avg_pool_2x2(x.clone()).expect("CPU backend")
                } else {
                    pool.forward(x.clone())
                };
                let grads = (y.clone() * dy.clone()).sum().backward();
                (y.detach(), x.grad(&grads).expect("x tracked"))
            };
            let ((y1, dx1), (y2, dx2)) = (run(true), run(false));
            assert_eq!(y1.dims(), y2.dims());
            let diff = |a: Tensor<4>, b: Tensor<4>| -> f32 { (a - b).abs().max().into_scalar() };
            assert!(diff(y1, y2) < 1e-6, "output at {h}×{w}");
            assert_eq!(dx1.dims(), [2, 3, h, w]);
            assert!(diff(dx1, dx2) < 1e-6, "input gradient at {h}×{w}");
        }
    }

    /// A side of 1 has no window: an empty output, a zero gradient.
    #[test]
    fn sides_without_a_window() {
        assert!(forward(&[1.0; 5], [1, 1, 5, 1]).is_empty());
        assert_eq!(backward(&[], [1, 1, 5, 1]), vec![0.0; 5]);
    }
}
