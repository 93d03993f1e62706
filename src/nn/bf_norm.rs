//! Bias-free batch normalization (Mohan, Kadkhodaie, Simoncelli & Fernandez-Granda 2020):
//! divide each channel by its standard deviation and multiply by a learned gain — no mean
//! subtraction and no additive shift, so the layer is positively homogeneous:
//! norm(a·x) = a·norm(x) for a > 0.
//!
//! In training mode the standard deviation is that of the batch (over N, H, W); in eval mode it
//! is a running average kept during training, so the denoiser becomes a fixed function.

use super::Mode;
use burn::module::{Module, Param, RunningState};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Tensor};

use super::kernels::norm_relu::{norm_relu, EPS};
/// Weight of the newest batch in the running standard deviation.
const MOMENTUM: f64 = 0.1;

/// Configuration of a [`BfNorm`].
#[derive(Clone, Copy, Debug)]
pub struct BfNormConfig {
    /// Number of channels.
    pub channels: usize,
}

impl BfNormConfig {
    /// Gains start as N(0, 2/9/64) clamped to ±0.025, as in the paper's code.
    pub fn init(&self, device: &Device) -> BfNorm {
        let c = self.channels;
        let gamma = Tensor::<1>::random(
            [c],
            Distribution::Normal(0.0, (2.0f64 / 9.0 / 64.0).sqrt()),
            device,
        )
        .clamp(-0.025, 0.025);
        BfNorm {
            gamma: Param::from_tensor(gamma),
            running_sd: RunningState::new(Tensor::ones([c], device)),
        }
    }
}

/// The layer. There is no bias field: nobody can switch one back on.
#[derive(Module, Debug)]
pub struct BfNorm {
    /// Learned per-channel gain.
    gamma: Param<Tensor<1>>,
    /// Running standard deviation per channel, used in eval mode.
    running_sd: RunningState<Tensor<1>>,
}

impl BfNorm {
    /// Number of channels (and of running statistics).
    pub fn channels(&self) -> usize {
        self.gamma.lazy_shape().num_elements()
    }

    /// γ / running sd as `[1, c, 1, 1]`: in eval mode the norm is this diagonal map, which is
    /// its own adjoint.
    pub fn eval_scale(&self) -> Tensor<4> {
        let c = self.channels();
        let gamma = self.gamma.val();
        let sd = self.running_sd.value().to_device(&gamma.device());
        gamma.reshape([1, c, 1, 1]) / sd.reshape([1, c, 1, 1])
    }

    /// # Shapes
    /// `x`: `[n, c, h, w]` → `[n, c, h, w]`.
    pub fn forward(&self, x: Tensor<4>, mode: Mode) -> Tensor<4> {
        let c = x.dims()[1];
        // one multiply by γ/sd (per channel) rather than a divide then a multiply: one pass
        // over the activations fewer, forward and backward
        let scale = match mode {
            Mode::Train => {
                let mean = x.clone().mean_dims(&[0, 2, 3]); // [1, c, 1, 1]
                let mean_sq = x.clone().square().mean_dims(&[0, 2, 3]);
                let sd = (mean_sq - mean.square()).add_scalar(EPS).sqrt();
                self.update_running_sd(sd.clone().reshape([c]));
                self.gamma.val().reshape([1, c, 1, 1]) / sd
            }
            Mode::Eval => self.eval_scale().to_device(&x.device()),
        };
        x * scale
    }

    /// relu(self.forward(x, mode)), fused into one operation for training on the CPU backend
    /// (the private `nn::kernels::norm_relu`).
    pub fn forward_relu(&self, x: Tensor<4>, mode: Mode) -> Tensor<4> {
        if mode == Mode::Train {
            if let Some((y, sd)) = norm_relu(x.clone(), self.gamma.val()) {
                self.update_running_sd(sd);
                return y;
            }
        }
        relu(self.forward(x, mode))
    }

    /// Moves the running standard deviation towards the batch's `sd` (`[c]`).
    fn update_running_sd(&self, sd: Tensor<1>) {
        let running = self
            .running_sd
            .value_sync()
            .to_device(&sd.device())
            .mul_scalar(1.0 - MOMENTUM)
            + sd.detach().mul_scalar(MOMENTUM);
        self.running_sd.update(running.detach());
    }
}
