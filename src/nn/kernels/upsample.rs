//! The BF-UNet's upsampling, a 2×2 transposed convolution with stride 2 and no bias, on the CPU
//! backend as a burn backend extension with its own backward pass.
//!
//! The windows do not overlap, so the layer is one matrix product per image followed by a
//! pixel shuffle: y[co, 2i+a, 2j+b] = Σ_ci w[ci, co, a, b]·x[ci, i, j]. Its data gradient is
//! the transposed product after the inverse shuffle and its weight gradient one product summed
//! over the batch. burn's CPU backend ran it as a general transposed convolution, with its
//! gradients through a strided convolution, about three times the work. On other devices the
//! layers use burn's own `conv_transpose2d`.

use super::bilinear::{self, BilinearKernels};
use super::buffer::par_filled;
use super::host::{dims, flex, host, on_flex};
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::nn::conv::ConvTranspose2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

/// Shape of an upsampling: `[batch, c_in, h, w]` in, `[batch, c_out, 2h, 2w]` out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpShape {
    /// Images in the batch.
    pub batch: usize,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
}

impl UpShape {
    fn in_len(&self) -> usize {
        self.c_in * self.h * self.w
    }
    fn out_len(&self) -> usize {
        4 * self.c_out * self.h * self.w
    }
}

/// y = upsample(x, weight): `x` `[batch, c_in, h, w]`, `weight` `[c_in, c_out, 2, 2]` (burn's
/// transposed-convolution layout), `y` `[batch, c_out, 2h, 2w]`.
pub fn forward(x: &[f32], weight: &[f32], s: UpShape) -> Vec<f32> {
    check(x.len(), s.batch * s.in_len(), "input");
    check(weight.len(), s.c_in * s.c_out * 4, "weight");
    let hw = s.h * s.w;
    // weight as c_in × (c_out·4): columns (co, a, b)
    let wr = MatRef::from_row_major_slice(weight, s.c_in, 4 * s.c_out);
    par_filled(s.batch * s.out_len(), s.out_len(), |b, y| {
        let mut prod = vec![0.0f32; s.out_len()];
        let dst = MatMut::from_row_major_slice_mut(&mut prod, 4 * s.c_out, hw);
        let rhs = MatRef::from_row_major_slice(&x[b * s.in_len()..][..s.in_len()], s.c_in, hw);
        matmul(dst, Accum::Replace, wr.transpose(), rhs, 1.0f32, Par::Seq);
        shuffle(&prod, y, s);
    })
}

/// ∂L/∂x from ∂L/∂y: the adjoint of [`forward`] in x.
pub fn backward_data(dy: &[f32], weight: &[f32], s: UpShape) -> Vec<f32> {
    check(dy.len(), s.batch * s.out_len(), "output gradient");
    check(weight.len(), s.c_in * s.c_out * 4, "weight");
    let hw = s.h * s.w;
    let wr = MatRef::from_row_major_slice(weight, s.c_in, 4 * s.c_out);
    par_filled(s.batch * s.in_len(), s.in_len(), |b, dx| {
        let g = unshuffle(&dy[b * s.out_len()..][..s.out_len()], s);
        let rhs = MatRef::from_row_major_slice(&g, 4 * s.c_out, hw);
        let dst = MatMut::from_row_major_slice_mut(dx, s.c_in, hw);
        matmul(dst, Accum::Replace, wr, rhs, 1.0f32, Par::Seq);
    })
}

/// ∂L/∂weight from the input `x` and ∂L/∂y: `[c_in, c_out, 2, 2]`. Blocks of a fixed number
/// of rows of the result are shared out between threads, each summing the batch in order, so
/// the result does not depend on the thread count.
pub fn backward_weight(x: &[f32], dy: &[f32], s: UpShape) -> Vec<f32> {
    check(x.len(), s.batch * s.in_len(), "input");
    check(dy.len(), s.batch * s.out_len(), "output gradient");
    let hw = s.h * s.w;
    let g: Vec<Vec<f32>> = dy
        .par_chunks(s.out_len())
        .map(|dy| unshuffle(dy, s))
        .collect();
    let row = 4 * s.c_out;
    par_filled(s.c_in * row, ROWS_PER_TASK * row, |task, dw| {
        let (ci0, rows) = (task * ROWS_PER_TASK, dw.len() / row);
        let mut dst = MatMut::from_row_major_slice_mut(dw, rows, row);
        for (b, g) in g.iter().enumerate() {
            let xb = &x[b * s.in_len() + ci0 * hw..][..rows * hw];
            let lhs = MatRef::from_row_major_slice(xb, rows, hw);
            let rhs = MatRef::from_row_major_slice(g, row, hw).transpose();
            let accum = if b == 0 { Accum::Replace } else { Accum::Add };
            matmul(dst.as_mut(), accum, lhs, rhs, 1.0f32, Par::Seq);
        }
    })
}

/// Rows of the weight gradient per parallel task (a constant, for reproducibility).
const ROWS_PER_TASK: usize = 16;

/// `[c_out][a][b][i][j]` → `[c_out][2i + a][2j + b]` for one image.
fn shuffle(prod: &[f32], y: &mut [f32], s: UpShape) {
    let (hw, w2) = (s.h * s.w, 2 * s.w);
    for co in 0..s.c_out {
        for a in 0..2 {
            let (p0, p1) = (
                &prod[(4 * co + 2 * a) * hw..][..hw],
                &prod[(4 * co + 2 * a + 1) * hw..][..hw],
            );
            for i in 0..s.h {
                let row = &mut y[(co * 2 * s.h + 2 * i + a) * w2..][..w2];
                let (e, o) = (&p0[i * s.w..][..s.w], &p1[i * s.w..][..s.w]);
                for ((pair, e), o) in row.chunks_exact_mut(2).zip(e).zip(o) {
                    pair[0] = *e;
                    pair[1] = *o;
                }
            }
        }
    }
}

/// The inverse of [`shuffle`] (and its adjoint: a permutation).
fn unshuffle(y: &[f32], s: UpShape) -> Vec<f32> {
    let (hw, w2) = (s.h * s.w, 2 * s.w);
    let mut prod = vec![0.0f32; s.out_len()];
    for co in 0..s.c_out {
        for a in 0..2 {
            let (p0, p1) = prod[(4 * co + 2 * a) * hw..][..2 * hw].split_at_mut(hw);
            for i in 0..s.h {
                let row = &y[(co * 2 * s.h + 2 * i + a) * w2..][..w2];
                let (e, o) = (&mut p0[i * s.w..][..s.w], &mut p1[i * s.w..][..s.w]);
                for ((pair, e), o) in row.chunks_exact(2).zip(e).zip(o) {
                    *e = pair[0];
                    *o = pair[1];
                }
            }
        }
    }
    prod
}

fn check(len: usize, expected: usize, what: &str) {
    assert_eq!(len, expected, "upsample: {what} has the wrong length");
}

/// The extension: one differentiable operation and its adjoint, routed to the CPU backend
/// (with or without autodiff).
#[backend_extension(Flex, Autodiff)]
pub trait Upsample: Backend {
    /// 2×2 transposed convolution, stride 2, no bias.
    fn upsample(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The adjoint of [`Upsample::upsample`] in x for fixed `weight`: the stride-2 convolution
    /// with the same kernel, `[b, c_out, 2h, 2w]` → `[b, c_in, h, w]`. By default composed from
    /// differentiable primitives.
    fn upsample_adjoint(v: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::conv2d(v, weight, None, ConvOptions::new([2, 2], [0, 0], [1, 1], 1))
    }
}

fn up_shape(x: &FlexTensor, c_out: usize) -> UpShape {
    let [batch, c_in, h, w] = dims(x);
    UpShape {
        batch,
        c_in,
        c_out,
        h,
        w,
    }
}

/// The operation's kernels on the CPU backend, for the extension and for [`super::bilinear`]'s
/// backward pass.
struct UpsampleOp;

impl BilinearKernels<Flex> for UpsampleOp {
    /// y = upsample(x, w), `x` `[b, c_in, h, w]`, `w` `[c_in, c_out, 2, 2]`.
    fn forward(x: FlexTensor, weight: FlexTensor) -> FlexTensor {
        let s = up_shape(&x, dims(&weight)[1]);
        let y = forward(&host(&x), &host(&weight), s);
        flex(y, [s.batch, s.c_out, 2 * s.h, 2 * s.w])
    }

    fn backward_data(dy: FlexTensor, weight: FlexTensor) -> FlexTensor {
        let [c_in, c_out, _, _] = dims(&weight);
        let [batch, _, h2, w2] = dims(&dy);
        let s = UpShape {
            batch,
            c_in,
            c_out,
            h: h2 / 2,
            w: w2 / 2,
        };
        let dx = backward_data(&host(&dy), &host(&weight), s);
        flex(dx, [s.batch, c_in, s.h, s.w])
    }

    fn backward_weight(x: FlexTensor, dy: FlexTensor) -> FlexTensor {
        let s = up_shape(&x, dims(&dy)[1]);
        let dw = backward_weight(&host(&x), &host(&dy), s);
        flex(dw, [s.c_in, s.c_out, 2, 2])
    }
}

impl Upsample for Flex {
    fn upsample(x: FlexTensor, weight: FlexTensor) -> FlexTensor {
        UpsampleOp::forward(x, weight)
    }

    fn upsample_adjoint(v: FlexTensor, weight: FlexTensor) -> FlexTensor {
        UpsampleOp::backward_data(v, weight)
    }
}

impl<B: Backend, C: CheckpointStrategy> Upsample for Autodiff<B, C>
where
    UpsampleOp: BilinearKernels<B>,
{
    fn upsample(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        bilinear::tracked::<B, C, UpsampleOp>(x, weight)
    }
}

/// Applies `up` (a bias-free 2×2, stride-2 transposed convolution) to `x`: through the
/// extension on the CPU backend, through burn's layer elsewhere.
pub fn upsample(up: &ConvTranspose2d, x: Tensor<4>) -> Tensor<4> {
    if !on_flex(&x) {
        return up.forward(x);
    }
    Tensor::from_dispatch(<Dispatch as Upsample>::upsample(
        x.into_dispatch(),
        up.weight.val().into_dispatch(),
    ))
}

/// The adjoint of [`upsample`] with `up`'s weights: the stride-2 convolution with its kernel.
pub fn upsample_adjoint(up: &ConvTranspose2d, v: Tensor<4>) -> Tensor<4> {
    let weight = up.weight.val();
    if !on_flex(&v) {
        let options = ConvOptions::new([2, 2], [0, 0], [1, 1], 1);
        return burn::tensor::module::conv2d(v, weight, None, options);
    }
    Tensor::from_dispatch(<Dispatch as Upsample>::upsample_adjoint(
        v.into_dispatch(),
        weight.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::ConvTranspose2dConfig;
    use burn::tensor::{Device, Distribution};

    fn layer(c_in: usize, c_out: usize, device: &Device) -> ConvTranspose2d {
        ConvTranspose2dConfig::new([c_in, c_out], [2, 2])
            .with_stride([2, 2])
            .with_bias(false)
            .init(device)
    }

    fn max_abs_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    /// The extension and burn's transposed convolution agree on the output and both gradients.
    #[test]
    fn matches_burn_conv_transpose_forward_and_backward() {
        let device = Device::flex().autodiff();
        let up = layer(6, 4, &device);
        let x: Tensor<4> = Tensor::random([3, 6, 5, 7], Distribution::Normal(0.0, 1.0), &device);
        let dy: Tensor<4> = Tensor::random([3, 4, 10, 14], Distribution::Normal(0.0, 1.0), &device);
        let run = |ours: bool| {
            let x = x.clone().detach().require_grad();
            let y = if ours {
                upsample(&up, x.clone())
            } else {
                up.forward(x.clone())
            };
            let grads = (y.clone() * dy.clone()).sum().backward();
            let dx = x.grad(&grads).expect("x tracked");
            let dw = up.weight.val().grad(&grads).expect("weight tracked");
            (y.detach(), dx, dw)
        };
        let (y1, dx1, dw1) = run(true);
        let (y2, dx2, dw2) = run(false);
        assert!(max_abs_diff(y1, y2) < 1e-4);
        assert!(max_abs_diff(dx1, dx2) < 1e-4);
        let dw_err: f32 = (dw1 - dw2).abs().max().into_scalar();
        assert!(dw_err < 1e-3, "weight gradient differs by {dw_err}");
    }

    /// ⟨up(x), v⟩ = ⟨x, adjoint(v)⟩ on the plain CPU device (the host kernel) and on the
    /// autodiff device (the trait's default body).
    #[test]
    fn adjoint_is_the_transpose_on_both_routes() {
        for device in [Device::flex(), Device::flex().autodiff()] {
            let up = layer(5, 3, &device);
            let x: Tensor<4> =
                Tensor::random([2, 5, 4, 3], Distribution::Normal(0.0, 1.0), &device);
            let v: Tensor<4> =
                Tensor::random([2, 3, 8, 6], Distribution::Normal(0.0, 1.0), &device);
            let lhs: f32 = (upsample(&up, x.clone()) * v.clone()).sum().into_scalar();
            let rhs: f32 = (x * upsample_adjoint(&up, v)).sum().into_scalar();
            assert!(
                (lhs - rhs).abs() < 1e-3 * lhs.abs().max(1.0),
                "{lhs} vs {rhs}"
            );
        }
    }

    /// Bit-identical weight gradients whatever the number of threads.
    #[test]
    fn weight_gradient_does_not_depend_on_the_thread_count() {
        let s = UpShape {
            batch: 3,
            c_in: 37,
            c_out: 8,
            h: 6,
            w: 5,
        };
        let x: Vec<f32> = (0..s.batch * s.in_len())
            .map(|i| (i as f32 * 0.37).sin())
            .collect();
        let dy: Vec<f32> = (0..s.batch * s.out_len())
            .map(|i| (i as f32 * 0.11).cos())
            .collect();
        let run =
            |threads| super::super::testing::on_threads(threads, || backward_weight(&x, &dy, s));
        assert!(run(1) == run(3), "results differ between 1 and 3 threads");
    }
}
