//! BF-UNet: the bias-free UNet of Kadkhodaie, Guth, Simoncelli & Mallat (ICLR 2024).
//!
//! `blocks` encoder scales, each two 3×3 convolutions (no bias) with bias-free batch norm and
//! ReLU, then 2×2 average pooling; a middle block; decoders that upsample with a 2×2 transposed
//! convolution (no bias), concatenate the encoder's output at that scale and apply two more
//! convolutions. Channels double at each scale: K, 2K, 4K, … With 3 blocks and K = 64 it has
//! 7.6 M parameters. Every operation is positively homogeneous, so f(a·y) = a·f(y).
//!
//! Images whose size is not a multiple of 2^blocks are zero-padded at the bottom and right and
//! the output cropped back; zero padding is linear, so homogeneity is kept.

use super::bf_norm::{BfNorm, BfNormConfig};
use super::kernels::conv::{conv3x3, conv3x3_adjoint};
use super::kernels::pool::avg_pool_2x2;
use super::kernels::upsample::{upsample, upsample_adjoint};
use super::relus::{pop_mask, Relus};
use super::{new_conv3x3, Mode};
use burn::module::Module;
use burn::nn::conv::{Conv2d, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Tensor};

/// Two convolutions, each followed by bias-free norm and ReLU. The very first convolution of the
/// network has no norm (as in the paper's code).
#[derive(Module, Debug)]
pub struct ConvBlock {
    conv1: Conv2d,
    norm1: Option<BfNorm>,
    conv2: Conv2d,
    norm2: BfNorm,
}

impl ConvBlock {
    fn new(c_in: usize, c_out: usize, first: bool, device: &Device) -> Self {
        Self {
            conv1: new_conv3x3(c_in, c_out, device),
            norm1: (!first).then(|| BfNormConfig { channels: c_out }.init(device)),
            conv2: new_conv3x3(c_out, c_out, device),
            norm2: BfNormConfig { channels: c_out }.init(device),
        }
    }

    /// Running statistics held by the block's norms.
    fn running_statistics(&self) -> usize {
        self.norm1.as_ref().map_or(0, BfNorm::channels) + self.norm2.channels()
    }

    fn forward(&self, x: Tensor<4>, mode: Mode, relus: &mut Relus<'_>) -> Tensor<4> {
        let h = conv3x3(&self.conv1, x);
        let h = match &self.norm1 {
            Some(n) => relus.norm_relu(n, h, mode),
            None => relus.relu(h),
        };
        relus.norm_relu(&self.norm2, conv3x3(&self.conv2, h), mode)
    }

    /// The adjoint of the eval-mode block with the ReLU pattern `masks` (popped, last first).
    fn adjoint(&self, v: Tensor<4>, masks: &mut Vec<Tensor<4>>) -> Tensor<4> {
        // masks and scales are single images: combine them before touching the batch
        let v = v * (pop_mask(masks) * self.norm2.eval_scale());
        let mut mask1 = pop_mask(masks);
        if let Some(n) = &self.norm1 {
            mask1 = mask1 * n.eval_scale();
        }
        conv3x3_adjoint(&self.conv1, conv3x3_adjoint(&self.conv2, v) * mask1)
    }
}

/// Configuration of a [`BfUnet`].
#[derive(Clone, Copy, Debug)]
pub struct BfUnetConfig {
    /// Image channels in and out (1 gray, 3 RGB).
    pub image_channels: usize,
    /// Channels K of the first scale.
    pub channels: usize,
    /// Number of encoder scales (the paper uses 3).
    pub blocks: usize,
}

impl BfUnetConfig {
    /// Initialises the network on `device` (weights from the device's seeded generator).
    pub fn init(&self, device: &Device) -> BfUnet {
        let k = self.channels;
        let enc = (0..self.blocks)
            .map(|b| {
                if b == 0 {
                    ConvBlock::new(self.image_channels, k, true, device)
                } else {
                    ConvBlock::new(k << (b - 1), k << b, false, device)
                }
            })
            .collect();
        let deepest = k << (self.blocks - 1);
        let mid = ConvBlock::new(deepest, 2 * deepest, false, device);
        // decoder i works at scale b = blocks − 1 − i
        let scales = (0..self.blocks).rev();
        let up = scales
            .clone()
            .map(|b| {
                ConvTranspose2dConfig::new([k << (b + 1), k << b], [2, 2])
                    .with_stride([2, 2])
                    .with_bias(false)
                    .init(device)
            })
            .collect();
        let dec = scales
            .map(|b| ConvBlock::new(k << (b + 1), k << b, false, device))
            .collect();
        BfUnet {
            enc,
            mid,
            up,
            dec,
            last: new_conv3x3(k, self.image_channels, device),
            pool: AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
        }
    }
}

/// The network; its output is the predicted noise (residual), see [`super::Network`].
#[derive(Module, Debug)]
pub struct BfUnet {
    enc: Vec<ConvBlock>,
    mid: ConvBlock,
    up: Vec<ConvTranspose2d>,
    dec: Vec<ConvBlock>,
    last: Conv2d,
    pool: AvgPool2d,
}

impl BfUnet {
    /// Running statistics (not trained) held by the norms.
    pub fn running_statistics(&self) -> usize {
        self.enc
            .iter()
            .chain(std::iter::once(&self.mid))
            .chain(&self.dec)
            .map(ConvBlock::running_statistics)
            .sum()
    }

    /// # Shapes
    /// `x`: `[n, c, h, w]` → `[n, c, h, w]`, any h, w ≥ 1.
    pub fn forward(&self, x: Tensor<4>, mode: Mode) -> Tensor<4> {
        self.forward_with(x, mode, &mut Relus::Apply)
    }

    /// The configuration it was built from, read off its first convolution and its scales.
    pub fn config(&self) -> BfUnetConfig {
        let shape = self.enc[0].conv1.weight.lazy_shape();
        BfUnetConfig {
            image_channels: shape[1],
            channels: shape[0],
            blocks: self.enc.len(),
        }
    }

    /// The padding that makes h and w multiples of 2^blocks.
    fn padding(&self, h: usize, w: usize) -> (usize, usize) {
        let m = 1 << self.enc.len();
        (h.div_ceil(m) * m - h, w.div_ceil(m) * m - w)
    }

    /// [`Self::forward`] with the ReLUs doing what `relus` says (recording their patterns in
    /// eval mode is what [`Self::adjoint`] needs).
    pub(super) fn forward_with(
        &self,
        x: Tensor<4>,
        mode: Mode,
        relus: &mut Relus<'_>,
    ) -> Tensor<4> {
        let [n, c, h, w] = x.dims();
        let (ph, pw) = self.padding(h, w);
        let x = if ph + pw > 0 {
            x.pad((0, pw, 0, ph), PadMode::Constant(0.0))
        } else {
            x
        };
        let mut skips = Vec::with_capacity(self.enc.len());
        let mut h_ = x;
        for block in &self.enc {
            let s = block.forward(h_, mode, relus);
            h_ = avg_pool_2x2(s.clone()).unwrap_or_else(|| self.pool.forward(s.clone()));
            skips.push(s);
        }
        h_ = self.mid.forward(h_, mode, relus);
        for (up, dec) in self.up.iter().zip(&self.dec) {
            let s = skips.pop().expect("one skip per scale");
            h_ = dec.forward(Tensor::cat(vec![upsample(up, h_), s], 1), mode, relus);
        }
        let out = conv3x3(&self.last, h_);
        if ph + pw > 0 {
            out.slice([0..n, 0..c, 0..h, 0..w])
        } else {
            out
        }
    }

    /// vᵀ·∂net/∂x for each v of the batch `v`, at the input whose eval-mode ReLU pattern is
    /// `masks` (recorded on one image by [`super::Network::linearize`]; the network is linear once the
    /// pattern is fixed, so this is exact). Consumes `masks`.
    ///
    /// # Shapes
    /// `v`: `[k, c, h, w]` → `[k, c, h, w]`; masks broadcast over the k vectors.
    pub fn adjoint(&self, v: Tensor<4>, mut masks: Vec<Tensor<4>>) -> Tensor<4> {
        let [k, c, h, w] = v.dims();
        let (ph, pw) = self.padding(h, w);
        let v = if ph + pw > 0 {
            v.pad((0, pw, 0, ph), PadMode::Constant(0.0))
        } else {
            v
        };
        let mut g = conv3x3_adjoint(&self.last, v);
        let mut skip_grads = Vec::with_capacity(self.enc.len());
        for (up, dec) in self.up.iter().zip(&self.dec).rev() {
            g = dec.adjoint(g, &mut masks);
            let up_channels = up.weight.dims()[1];
            let skip_channels = g.dims()[1] - up_channels;
            skip_grads.push(g.clone().narrow(1, up_channels, skip_channels));
            g = upsample_adjoint(up, g.narrow(1, 0, up_channels));
        }
        g = self.mid.adjoint(g, &mut masks);
        for block in self.enc.iter().rev() {
            let [n, ch, sh, sw] = g.dims();
            // average pooling's adjoint: each value spread over its 2×2 window, divided by 4
            let spread = g
                .reshape([n, ch, sh, 1, sw, 1])
                .expand([n, ch, sh, 2, sw, 2])
                .reshape([n, ch, 2 * sh, 2 * sw])
                .mul_scalar(0.25);
            let skip = skip_grads.pop().expect("one skip gradient per scale");
            g = block.adjoint(spread + skip, &mut masks);
        }
        debug_assert!(masks.is_empty(), "every recorded mask is used");
        if ph + pw > 0 {
            g.slice([0..k, 0..c, 0..h, 0..w])
        } else {
            g
        }
    }
}
