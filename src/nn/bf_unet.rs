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
use super::{conv3x3, Mode};
use burn::module::Module;
use burn::nn::conv::{Conv2d, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::tensor::activation::relu;
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
            conv1: conv3x3(c_in, c_out, device),
            norm1: (!first).then(|| BfNormConfig { channels: c_out }.init(device)),
            conv2: conv3x3(c_out, c_out, device),
            norm2: BfNormConfig { channels: c_out }.init(device),
        }
    }

    /// Running statistics held by the block's norms.
    fn running_statistics(&self) -> usize {
        self.norm1.as_ref().map_or(0, BfNorm::channels) + self.norm2.channels()
    }

    fn forward(&self, x: Tensor<4>, mode: Mode) -> Tensor<4> {
        let mut h = self.conv1.forward(x);
        if let Some(n) = &self.norm1 {
            h = n.forward(h, mode);
        }
        let h = relu(h);
        relu(self.norm2.forward(self.conv2.forward(h), mode))
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
            last: conv3x3(k, self.image_channels, device),
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
        let [n, c, h, w] = x.dims();
        let m = 1 << self.enc.len();
        let (ph, pw) = (h.div_ceil(m) * m - h, w.div_ceil(m) * m - w);
        let x = if ph + pw > 0 {
            x.pad((0, pw, 0, ph), PadMode::Constant(0.0))
        } else {
            x
        };
        let mut skips = Vec::with_capacity(self.enc.len());
        let mut h_ = x;
        for block in &self.enc {
            let s = block.forward(h_, mode);
            h_ = self.pool.forward(s.clone());
            skips.push(s);
        }
        h_ = self.mid.forward(h_, mode);
        for (up, dec) in self.up.iter().zip(&self.dec) {
            let s = skips.pop().expect("one skip per scale");
            h_ = dec.forward(Tensor::cat(vec![up.forward(h_), s], 1), mode);
        }
        let out = self.last.forward(h_);
        if ph + pw > 0 {
            out.slice([0..n, 0..c, 0..h, 0..w])
        } else {
            out
        }
    }
}
