//! The small UNet of Mohan, Kadkhodaie, Simoncelli & Fernandez-Granda (ICLR 2020) without
//! bias, as LabForComputationalVision/bias_free_denoising defines it (`models/unet.py`, after
//! Zhang et al. 2018): a 5×5 and a 3×3 convolution at full resolution (the second's output is
//! kept for the skip), a stride-2 3×3 convolution down, a 3×3 and two dilated 3×3 convolutions
//! (dilation 2 and 4) at half resolution, a 4×4 stride-2 transposed convolution up, the skip
//! concatenated, a 3×3 and a final 5×5 convolution. ReLU after every layer but the last; no
//! normalisation, no bias. Its forward returns the denoised image x̂ (the repository's
//! `residual=False`, which its published weights use), so as one of our networks, which predict
//! the noise, it is y − unet(y).
//!
//! Images with an odd side are zero-padded at the bottom or right and the output cropped, as
//! the original does; padding is linear, so homogeneity is kept.

use super::relus::{pop_mask, Relus};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::PaddingConfig2d;
use burn::tensor::module::{conv2d, conv_transpose2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions, PadMode};
use burn::tensor::{Device, Tensor};

/// Feature channels at full resolution (32) and at half resolution (64), fixed by the design.
const FULL: usize = 32;
const HALF: usize = 64;

/// Configuration of a [`BfUnet2020`]: only the image channels vary.
#[derive(Clone, Copy, Debug)]
pub struct BfUnet2020Config {
    /// Image channels in and out (the published weights: 1).
    pub image_channels: usize,
}

/// A convolution without bias: `k`×`k`, the given stride and dilation, padding keeping the
/// size (up to the stride).
fn conv(
    c_in: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    dilation: usize,
    device: &Device,
) -> Conv2d {
    let p = dilation * (k - 1) / 2;
    Conv2dConfig::new([c_in, c_out], [k, k])
        .with_stride([stride, stride])
        .with_dilation([dilation, dilation])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_bias(false)
        .init(device)
}

impl BfUnet2020Config {
    /// Initialises the network on `device` (burn's default initialisation).
    pub fn init(&self, device: &Device) -> BfUnet2020 {
        let c = self.image_channels;
        BfUnet2020 {
            conv1: conv(c, FULL, 5, 1, 1, device),
            conv2: conv(FULL, FULL, 3, 1, 1, device),
            conv3: conv(FULL, HALF, 3, 2, 1, device),
            conv4: conv(HALF, HALF, 3, 1, 1, device),
            conv5: conv(HALF, HALF, 3, 1, 2, device),
            conv6: conv(HALF, HALF, 3, 1, 4, device),
            conv7: ConvTranspose2dConfig::new([HALF, HALF], [4, 4])
                .with_stride([2, 2])
                .with_padding([1, 1])
                .with_bias(false)
                .init(device),
            conv8: conv(HALF + FULL, FULL, 3, 1, 1, device),
            conv9: conv(FULL, c, 5, 1, 1, device),
        }
    }
}

/// The network; see the module documentation.
#[derive(Module, Debug)]
pub struct BfUnet2020 {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
    conv4: Conv2d,
    conv5: Conv2d,
    conv6: Conv2d,
    conv7: ConvTranspose2d,
    conv8: Conv2d,
    conv9: Conv2d,
}

/// vᵀ·∂conv/∂x: the transposed convolution with the same weight, stride, padding and
/// dilation, its output padding chosen to give back the input's size `[h, w]`.
fn conv_adjoint(layer: &Conv2d, v: Tensor<4>, [h, w]: [usize; 2]) -> Tensor<4> {
    let weight = layer.weight.val();
    let [_, _, k, _] = weight.dims();
    let (s, d) = (layer.stride[0], layer.dilation[0]);
    let p = d * (k - 1) / 2;
    let [_, _, gh, gw] = v.dims();
    let natural = |g: usize| (g - 1) * s + d * (k - 1) + 1 - 2 * p;
    let options = ConvTransposeOptions::new(
        [s, s],
        [p, p],
        [h - natural(gh), w - natural(gw)],
        [d, d],
        1,
    );
    conv_transpose2d(v, weight, None, options)
}

/// vᵀ·∂convT/∂x for the 4×4 stride-2 transposed convolution: the convolution with the same
/// weight (its layout [in, out, k, k] is a convolution's [out, in, k, k] the other way round).
fn conv_transpose_adjoint(layer: &ConvTranspose2d, v: Tensor<4>) -> Tensor<4> {
    conv2d(
        v,
        layer.weight.val(),
        None,
        ConvOptions::new([2, 2], [1, 1], [1, 1], 1),
    )
}

impl BfUnet2020 {
    /// The configuration it was built from, read off its first convolution.
    pub fn config(&self) -> BfUnet2020Config {
        BfUnet2020Config {
            image_channels: self.conv1.weight.lazy_shape()[1],
        }
    }

    /// The predicted noise y − unet(y) with the ReLUs doing what `relus` says.
    pub(super) fn forward_with(&self, y: Tensor<4>, relus: &mut Relus<'_>) -> Tensor<4> {
        y.clone() - self.denoised_with(y, relus)
    }

    /// The original network's output, x̂.
    pub fn denoised(&self, y: Tensor<4>) -> Tensor<4> {
        self.denoised_with(y, &mut Relus::Apply)
    }

    fn denoised_with(&self, x: Tensor<4>, relus: &mut Relus<'_>) -> Tensor<4> {
        let [n, c, h, w] = x.dims();
        let (ph, pw) = (h % 2, w % 2);
        let x = match ph + pw {
            0 => x,
            _ => x.pad((0, pw, 0, ph), PadMode::Constant(0.0)),
        };
        let out = relus.relu(self.conv1.forward(x));
        let saved = relus.relu(self.conv2.forward(out));
        let mut out = relus.relu(self.conv3.forward(saved.clone()));
        for layer in [&self.conv4, &self.conv5, &self.conv6] {
            out = relus.relu(layer.forward(out));
        }
        let out = relus.relu(self.conv7.forward(out));
        let out = relus.relu(self.conv8.forward(Tensor::cat(vec![out, saved], 1)));
        let out = self.conv9.forward(out);
        match ph + pw {
            0 => out,
            _ => out.slice([0..n, 0..c, 0..h, 0..w]),
        }
    }

    /// vᵀ·∂net/∂y at the input whose eval-mode ReLU pattern is `masks` (see
    /// [`super::BfUnet::adjoint`]): v − vᵀ·∂unet/∂y.
    pub fn adjoint(&self, v: Tensor<4>, mut masks: Vec<Tensor<4>>) -> Tensor<4> {
        let [k, c, h, w] = v.dims();
        let (hp, wp) = (h + h % 2, w + w % 2);
        let u = match (hp - h) + (wp - w) {
            0 => v.clone(),
            _ => v
                .clone()
                .pad((0, wp - w, 0, hp - h), PadMode::Constant(0.0)),
        };
        let (full, half) = ([hp, wp], [hp / 2, wp / 2]);
        let mut g = conv_adjoint(&self.conv9, u, full) * pop_mask(&mut masks);
        g = conv_adjoint(&self.conv8, g, full);
        let skip = g.clone().narrow(1, HALF, FULL);
        g = g.narrow(1, 0, HALF) * pop_mask(&mut masks);
        g = conv_transpose_adjoint(&self.conv7, g);
        for layer in [&self.conv6, &self.conv5, &self.conv4] {
            g = conv_adjoint(layer, g * pop_mask(&mut masks), half);
        }
        g = conv_adjoint(&self.conv3, g * pop_mask(&mut masks), full) + skip;
        g = conv_adjoint(&self.conv2, g * pop_mask(&mut masks), full);
        g = conv_adjoint(&self.conv1, g * pop_mask(&mut masks), full);
        debug_assert!(masks.is_empty(), "every recorded mask is used");
        let g = match (hp - h) + (wp - w) {
            0 => g,
            _ => g.slice([0..k, 0..c, 0..h, 0..w]),
        };
        v - g
    }
}
