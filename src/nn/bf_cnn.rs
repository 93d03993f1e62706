//! BF-CNN: the bias-free DnCNN of Mohan et al. (ICLR 2020): a 3×3 convolution with ReLU, then
//! `layers − 2` convolutions each with bias-free batch norm and ReLU, then a final convolution
//! back to image channels. No additive constant anywhere.

use super::bf_norm::{BfNorm, BfNormConfig};
use super::kernels::conv::{conv3x3, conv3x3_adjoint};
use super::relus::{pop_mask, Relus};
use super::{new_conv3x3, Mode};
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};

/// Configuration of a [`BfCnn`].
#[derive(Clone, Copy, Debug)]
pub struct BfCnnConfig {
    /// Image channels in and out.
    pub image_channels: usize,
    /// Feature channels of the hidden layers.
    pub channels: usize,
    /// Total number of convolutions (DnCNN uses 20), at least 3.
    pub layers: usize,
}

impl BfCnnConfig {
    /// Initialises the network on `device`.
    pub fn init(&self, device: &Device) -> BfCnn {
        let k = self.channels;
        BfCnn {
            first: new_conv3x3(self.image_channels, k, device),
            hidden: (0..self.layers.saturating_sub(2))
                .map(|_| CnnLayer {
                    conv: new_conv3x3(k, k, device),
                    norm: BfNormConfig { channels: k }.init(device),
                })
                .collect(),
            last: new_conv3x3(k, self.image_channels, device),
        }
    }
}

/// Convolution, bias-free norm, ReLU.
#[derive(Module, Debug)]
pub struct CnnLayer {
    conv: Conv2d,
    norm: BfNorm,
}

/// The network; its output is the predicted noise (residual).
#[derive(Module, Debug)]
pub struct BfCnn {
    first: Conv2d,
    hidden: Vec<CnnLayer>,
    last: Conv2d,
}

impl BfCnn {
    /// Running statistics (not trained) held by the norms.
    pub fn running_statistics(&self) -> usize {
        self.hidden.iter().map(|l| l.norm.channels()).sum()
    }

    /// The configuration it was built from, read off its first convolution and its depth.
    pub fn config(&self) -> BfCnnConfig {
        let shape = self.first.weight.lazy_shape();
        BfCnnConfig {
            image_channels: shape[1],
            channels: shape[0],
            layers: self.hidden.len() + 2,
        }
    }

    /// # Shapes
    /// `x`: `[n, c, h, w]` → `[n, c, h, w]`.
    pub fn forward(&self, x: Tensor<4>, mode: Mode) -> Tensor<4> {
        self.forward_with(x, mode, &mut Relus::Apply)
    }

    /// [`Self::forward`] with the ReLUs doing what `relus` says.
    pub(super) fn forward_with(
        &self,
        x: Tensor<4>,
        mode: Mode,
        relus: &mut Relus<'_>,
    ) -> Tensor<4> {
        let mut h = relus.relu(conv3x3(&self.first, x));
        for layer in &self.hidden {
            h = relus.norm_relu(&layer.norm, conv3x3(&layer.conv, h), mode);
        }
        conv3x3(&self.last, h)
    }

    /// vᵀ·∂net/∂x at the input whose eval-mode ReLU pattern is `masks`; see
    /// [`super::BfUnet::adjoint`].
    pub fn adjoint(&self, v: Tensor<4>, mut masks: Vec<Tensor<4>>) -> Tensor<4> {
        let mut g = conv3x3_adjoint(&self.last, v);
        for layer in self.hidden.iter().rev() {
            g = g * (pop_mask(&mut masks) * layer.norm.eval_scale());
            g = conv3x3_adjoint(&layer.conv, g);
        }
        conv3x3_adjoint(&self.first, g * pop_mask(&mut masks))
    }
}
