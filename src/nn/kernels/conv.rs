//! The networks' 3×3 convolutions (stride 1, padding 1, no bias) on the CPU backend, as a
//! burn backend extension with its own backward pass. The forward pass, the data gradient
//! (training's and inference's adjoint alike) and the weight gradient run through
//! [`super::winograd_f4`] (F(4×4, 3×3)) where the shape suits it and [`super::winograd`]
//! (F(2×2, 3×3)) elsewhere. On other devices (CUDA, wgpu, libtorch) the layers use burn's own
//! `conv2d`.
//!
//! Why an extension rather than burn's `Conv2d`: burn's CPU backend computes the weight
//! gradient as a convolution whose kernel is the whole image, which took about as long as the
//! forward and data-gradient passes together; with Winograd's transforms the three passes do
//! 2.25× (F(2×2, 3×3)) to 4× (F(4×4, 3×3)) fewer multiplies than im2col (`tweedie bench` has
//! the figures).

use super::bilinear::{self, BilinearKernels};
use super::host::{dims, flex, host, on_flex};
use super::winograd::{self, ConvShape};
use super::winograd_f4;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::nn::conv::Conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;

/// The extension: one differentiable operation, routed to the CPU backend (with or without
/// autodiff).
#[backend_extension(Flex, Autodiff)]
pub trait Conv3x3: Backend {
    /// 3×3 convolution, stride 1, zero padding 1, no bias.
    fn conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The adjoint of [`Conv3x3::conv3x3`] in x for fixed `weight` (`[c_out, c_in, 3, 3]`):
    /// the convolution with the kernel flipped in space and its channel axes swapped,
    /// `[b, c_out, h, w]` → `[b, c_in, h, w]`. By default composed from differentiable
    /// primitives; the CPU backend flips on the host instead (burn's strided copy of a flipped
    /// view cost more than the flip is worth in every Jacobian product).
    fn conv3x3_adjoint(v: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        let flipped = Self::float_swap_dims(Self::float_flip(weight, &[2, 3]), 0, 1);
        Self::conv3x3(v, flipped)
    }
}

/// The shape of a convolution from its input `[b, c_in, h, w]` and its output channels.
fn conv_shape(x: &FlexTensor, c_out: usize) -> ConvShape {
    let [batch, c_in, h, w] = dims(x);
    ConvShape {
        batch,
        c_in,
        c_out,
        h,
        w,
    }
}

/// The operation's kernels on the CPU backend, for the extension and for [`super::bilinear`]'s
/// backward pass.
struct Conv3x3Op;

impl BilinearKernels<Flex> for Conv3x3Op {
    /// y = conv(x, w), `x` `[b, c_in, h, w]`, `w` `[c_out, c_in, 3, 3]`.
    fn forward(x: FlexTensor, weight: FlexTensor) -> FlexTensor {
        let s = conv_shape(&x, dims(&weight)[0]);
        let y = if winograd_f4::suits(s) {
            winograd_f4::forward(&host(&x), &host(&weight), s)
        } else {
            winograd::forward(&host(&x), &host(&weight), s)
        };
        flex(y, [s.batch, s.c_out, s.h, s.w])
    }

    fn backward_data(dy: FlexTensor, weight: FlexTensor) -> FlexTensor {
        let [c_out, c_in, _, _] = dims(&weight);
        let s = ConvShape {
            c_in,
            ..conv_shape(&dy, c_out)
        };
        let dx = if winograd_f4::suits(s) {
            let flipped = winograd::flipped(&host(&weight), s);
            winograd_f4::forward(&host(&dy), &flipped, s.transposed())
        } else {
            winograd::backward_data(&host(&dy), &host(&weight), s)
        };
        flex(dx, [s.batch, c_in, s.h, s.w])
    }

    fn backward_weight(x: FlexTensor, dy: FlexTensor) -> FlexTensor {
        let s = conv_shape(&x, dims(&dy)[1]);
        let dw = if winograd_f4::suits(s) {
            winograd_f4::backward_weight(&host(&x), &host(&dy), s)
        } else {
            winograd::backward_weight(&host(&x), &host(&dy), s)
        };
        flex(dw, [s.c_out, s.c_in, 3, 3])
    }
}

/// Inference: the same kernels without autodiff.
impl Conv3x3 for Flex {
    fn conv3x3(x: FlexTensor, weight: FlexTensor) -> FlexTensor {
        Conv3x3Op::forward(x, weight)
    }

    fn conv3x3_adjoint(v: FlexTensor, weight: FlexTensor) -> FlexTensor {
        Conv3x3Op::backward_data(v, weight)
    }
}

impl<B: Backend, C: CheckpointStrategy> Conv3x3 for Autodiff<B, C>
where
    Conv3x3Op: BilinearKernels<B>,
{
    fn conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        bilinear::tracked::<B, C, Conv3x3Op>(x, weight)
    }
}

/// Applies `conv` (a bias-free 3×3, stride-1, padding-1 layer) to `x`: through the Winograd
/// extension on the CPU backend, through burn's `conv2d` elsewhere.
pub fn conv3x3(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    conv3x3_with(x, conv.weight.val())
}

/// The adjoint of [`conv3x3`] with `conv`'s weights: the convolution with the kernel flipped in
/// space and its channel axes swapped.
pub fn conv3x3_adjoint(conv: &Conv2d, v: Tensor<4>) -> Tensor<4> {
    let weight = conv.weight.val();
    if !on_flex(&v) {
        return plain_conv3x3(v, weight.flip([2, 3]).swap_dims(0, 1));
    }
    Tensor::from_dispatch(<Dispatch as Conv3x3>::conv3x3_adjoint(
        v.into_dispatch(),
        weight.into_dispatch(),
    ))
}

fn conv3x3_with(x: Tensor<4>, weight: Tensor<4>) -> Tensor<4> {
    if !on_flex(&x) {
        return plain_conv3x3(x, weight);
    }
    Tensor::from_dispatch(<Dispatch as Conv3x3>::conv3x3(
        x.into_dispatch(),
        weight.into_dispatch(),
    ))
}

fn plain_conv3x3(x: Tensor<4>, weight: Tensor<4>) -> Tensor<4> {
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    burn::tensor::module::conv2d(x, weight, None, options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::new_conv3x3;
    use burn::tensor::{Device, Distribution};

    fn max_abs_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    /// ⟨conv(x), v⟩ = ⟨x, adjoint(v)⟩ on the plain CPU device (host flip) and on the autodiff
    /// device (the trait's default body).
    #[test]
    fn adjoint_is_the_transpose_on_both_routes() {
        for device in [Device::flex(), Device::flex().autodiff()] {
            let conv = new_conv3x3(4, 6, &device);
            let x: Tensor<4> =
                Tensor::random([2, 4, 7, 10], Distribution::Normal(0.0, 1.0), &device);
            let v: Tensor<4> =
                Tensor::random([2, 6, 7, 10], Distribution::Normal(0.0, 1.0), &device);
            let lhs: f32 = (conv3x3(&conv, x.clone()) * v.clone()).sum().into_scalar();
            let rhs: f32 = (x * conv3x3_adjoint(&conv, v)).sum().into_scalar();
            assert!(
                (lhs - rhs).abs() < 1e-3 * lhs.abs().max(1.0),
                "{lhs} vs {rhs}"
            );
        }
    }

    /// The extension and burn's `conv2d` agree on the output and on both gradients, with
    /// F(2×2, 3×3) (9×6) and with F(4×4, 3×3) forward and data-gradient passes (8×12).
    #[test]
    fn matches_burn_conv2d_forward_and_backward() {
        for [h, w] in [[9, 6], [8, 12]] {
            matches_burn_conv2d_at(h, w);
        }
    }

    fn matches_burn_conv2d_at(h: usize, w: usize) {
        let device = Device::flex().autodiff();
        let conv = new_conv3x3(3, 5, &device);
        let x: Tensor<4> = Tensor::random([2, 3, h, w], Distribution::Normal(0.0, 1.0), &device);
        let dy: Tensor<4> = Tensor::random([2, 5, h, w], Distribution::Normal(0.0, 1.0), &device);
        let run = |ours: bool| {
            let x = x.clone().detach().require_grad();
            let y = if ours {
                conv3x3(&conv, x.clone())
            } else {
                conv.forward(x.clone())
            };
            let grads = (y.clone() * dy.clone()).sum().backward();
            let dx = x.grad(&grads).expect("x tracked");
            let dw = conv.weight.val().grad(&grads).expect("weight tracked");
            (y.detach(), dx, dw)
        };
        let (y1, dx1, dw1) = run(true);
        let (y2, dx2, dw2) = run(false);
        assert!(max_abs_diff(y1, y2) < 1e-4, "output at {h}×{w}");
        assert!(max_abs_diff(dx1, dx2) < 1e-4, "input gradient at {h}×{w}");
        let dw_err: f32 = (dw1 - dw2).abs().max().into_scalar();
        assert!(
            dw_err < 1e-3,
            "weight gradient differs by {dw_err} at {h}×{w}"
        );
    }
}
