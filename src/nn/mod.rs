//! Bias-free denoising networks (BF-UNet, BF-CNN, and the 2020 UNet that imported weights
//! need): their configuration, their checkpoints (ours, and PyTorch's through [`import`]) and
//! their exact linearization at an input ([`Network::linearize`]). The CPU kernels behind
//! burn's extensions live in the private `kernels` module.
//!
//! Every network here predicts the noise: the denoiser is x̂ = y − net(y) (DESIGN.md). No layer
//! has an additive constant, so f(a·y) = a·f(y) for a > 0, and with ReLUs f is piecewise linear
//! with f(y) = J(y)·y.

mod bf_cnn;
mod bf_norm;
mod bf_unet;
mod bf_unet2020;
pub mod checkpoint;
pub mod ema;
pub mod import;
mod kernels;
mod relus;

pub use bf_cnn::{BfCnn, BfCnnConfig};
pub use bf_norm::{BfNorm, BfNormConfig};
pub use bf_unet::{BfUnet, BfUnetConfig};
pub use bf_unet2020::{BfUnet2020, BfUnet2020Config};

use crate::config::{check, InvalidField};
use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::tensor::{Device, Tensor};
use relus::Relus;
use serde::{Deserialize, Serialize};

/// Whether batch norms use batch statistics (and update their running ones) or the running ones.
///
/// Passed explicitly rather than inferred from the device: Jacobians need eval-mode behaviour on
/// an autodiff device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Batch statistics; running statistics are updated.
    Train,
    /// Running statistics: the network is a fixed function of its input.
    Eval,
}

/// Network architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// Bias-free UNet (the GAHB paper's network).
    BfUnet,
    /// Bias-free DnCNN.
    BfCnn,
    /// The small bias-free UNet of Mohan et al. (ICLR 2020), as bias_free_denoising defines it
    /// (fixed widths: 32 and 64 channels; `channels` is 32).
    #[value(name = "bf-unet-2020")]
    #[serde(rename = "bf-unet-2020")]
    BfUnet2020,
}

/// Everything needed to rebuild a network; stored in `config.json` and in the weights' metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetConfig {
    /// Architecture.
    pub arch: Arch,
    /// Image channels (1 gray, 3 RGB).
    pub image_channels: usize,
    /// Feature channels (BF-UNet: of the first scale, doubling at each scale).
    pub channels: usize,
    /// BF-UNet: number of encoder scales.
    pub blocks: usize,
    /// BF-CNN: number of convolutions.
    pub layers: usize,
}

impl NetConfig {
    /// Checks sizes before anything is allocated.
    pub fn validate(&self) -> Result<(), InvalidField> {
        check(
            matches!(self.image_channels, 1 | 3),
            "net.image_channels",
            self.image_channels,
            "images must have 1 (gray) or 3 (RGB) channels",
        )?;
        check(
            (1..=1024).contains(&self.channels),
            "net.channels",
            self.channels,
            "must be in 1..=1024",
        )?;
        match self.arch {
            Arch::BfUnet => check(
                (1..=6).contains(&self.blocks),
                "net.blocks",
                self.blocks,
                "must be in 1..=6",
            ),
            Arch::BfCnn => check(
                (3..=100).contains(&self.layers),
                "net.layers",
                self.layers,
                "must be in 3..=100",
            ),
            Arch::BfUnet2020 => check(
                self.channels == 32,
                "net.channels",
                self.channels,
                "the 2020 UNet has 32 channels at full resolution (64 at half); give 32",
            ),
        }
    }

    /// Pixels a BF-UNet works on at full scale: the image zero-padded to multiples of
    /// 2^blocks (see `bf_unet`).
    fn unet_pixels(&self, h: usize, w: usize) -> u64 {
        let m = 1usize << self.blocks;
        (h.div_ceil(m) * m * w.div_ceil(m) * m) as u64
    }

    /// Bytes a training step needs for a batch of `batch` `h`×`w` images beyond the process's
    /// base: two f32 values per activation (the forward value kept for the backward pass, and
    /// its gradient). Measured on the CPU backend (peak resident memory over batches of 16 to 128
    /// at 64×64, BF-UNet 2 × 16 to 3 × 64): within 5% of the measured peak once the process's
    /// base and the weights with their gradients and Adam moments (16 bytes per parameter) are
    /// added.
    pub fn training_bytes(&self, batch: usize, h: usize, w: usize) -> u64 {
        8 * batch as u64 * self.activations(h, w)
    }

    /// Bytes an eval-mode pass (sampling, restoring, denoising) needs for a batch: at most one
    /// f32 per activation (no gradients, and burn frees each value once used, so this is an
    /// upper bound).
    pub fn inference_bytes(&self, batch: usize, h: usize, w: usize) -> u64 {
        4 * batch as u64 * self.activations(h, w)
    }

    /// Values the forward pass produces for one `h`×`w` image (every convolution's output, and
    /// the BF-UNet's pooled, upsampled and concatenated maps): what training keeps per image for
    /// the backward pass, the bulk of its memory.
    pub fn activations(&self, h: usize, w: usize) -> u64 {
        let k = self.channels as u64;
        let last = self.image_channels as u64 * (h * w) as u64;
        match self.arch {
            Arch::BfUnet => {
                let pixels = self.unet_pixels(h, w);
                // scale b: k·2^b channels on pixels/4^b; encoder 2 convolutions + the pooled
                // map (a quarter), decoder upsampled + concatenated (2×) + 2 convolutions
                let scales: u64 = (0..self.blocks)
                    .map(|b| (k << b) * (pixels >> (2 * b)) * (2 * 4 + 1 + 4 * 5) / 4)
                    .sum();
                let mid = 2 * (k << self.blocks) * (pixels >> (2 * self.blocks));
                scales + mid + last
            }
            Arch::BfCnn => self.layers as u64 * k * (h * w) as u64 + last,
            Arch::BfUnet2020 => {
                // full resolution: conv1, conv2, conv7's output, the 96-channel concatenation,
                // conv8; half: conv3 … conv6
                let pixels = ((h + h % 2) * (w + w % 2)) as u64;
                (32 + 32 + 64 + 96 + 32) * pixels + 4 * 64 * pixels / 4 + last
            }
        }
    }

    /// Multiply-adds ×2 of one forward pass over an `h`×`w` image by direct convolution (3×3
    /// convolutions and the 2×2 transposed ones; norms, ReLUs and pooling are a rounding
    /// error): the yardstick for a workload's effective rate, whatever algorithm (Winograd)
    /// actually runs.
    pub fn forward_flops(&self, h: usize, w: usize) -> u64 {
        let c = self.image_channels as u64;
        let k = self.channels as u64;
        let conv = |c_in: u64, c_out: u64, pixels: u64| 2 * 9 * c_in * c_out * pixels;
        match self.arch {
            Arch::BfUnet => {
                let pixels = self.unet_pixels(h, w);
                let at = |b: usize| pixels >> (2 * b);
                let mut flops = 0;
                for b in 0..self.blocks {
                    let c_in = if b == 0 { c } else { k << (b - 1) };
                    // encoder: two convolutions at scale b
                    flops += conv(c_in, k << b, at(b)) + conv(k << b, k << b, at(b));
                    // decoder: a 2×2 transposed convolution from scale b + 1 (4 taps per
                    // input pixel), then two convolutions on the concatenation
                    flops += 2 * 4 * (k << (b + 1)) * (k << b) * at(b + 1);
                    flops += conv(k << (b + 1), k << b, at(b)) + conv(k << b, k << b, at(b));
                }
                let deep = k << (self.blocks - 1);
                let mid = at(self.blocks);
                flops += conv(deep, 2 * deep, mid) + conv(2 * deep, 2 * deep, mid);
                flops + conv(k, c, pixels)
            }
            Arch::BfCnn => {
                let pixels = (h * w) as u64;
                conv(c, k, pixels)
                    + (self.layers as u64 - 2) * conv(k, k, pixels)
                    + conv(k, c, pixels)
            }
            Arch::BfUnet2020 => {
                let full = ((h + h % 2) * (w + w % 2)) as u64;
                let half = full / 4;
                let five = |c_in: u64, c_out: u64| 2 * 25 * c_in * c_out * full;
                five(c, 32)
                    + conv(32, 32, full)
                    + conv(32, 64, half)
                    + 3 * conv(64, 64, half)
                    + 2 * 16 * 64 * 64 * half
                    + conv(96, 32, full)
                    + five(32, c)
            }
        }
    }

    /// Builds the network on `device`, weights drawn from `seed`.
    ///
    /// The weights are always drawn on the CPU backend and then moved: every backend has its own
    /// generator, and a run must start from the same network whichever device trains it.
    /// burn draws initial weights from the device's global generator, so seeding and building
    /// happen under one process-wide lock: two networks built at once on different threads
    /// (parallel runs, parallel tests) would otherwise interleave their draws.
    pub fn init(&self, device: &Device, seed: u64) -> Network {
        let host = if device.is_autodiff() {
            Device::flex().autodiff()
        } else {
            Device::flex()
        };
        let net = self.init_on(&host, seed);
        if crate::device::is_flex(device) {
            net
        } else {
            // `fork`, not `to_device`: on an autodiff device the copy must be a fresh leaf of
            // the graph, not the output of a transfer (whose node the first backward consumes)
            net.fork(device)
        }
    }

    fn init_on(&self, device: &Device, seed: u64) -> Network {
        static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
        device.seed(seed);
        let net = match self.arch {
            Arch::BfUnet => Network::Unet(
                BfUnetConfig {
                    image_channels: self.image_channels,
                    channels: self.channels,
                    blocks: self.blocks,
                }
                .init(device),
            ),
            Arch::BfCnn => Network::Cnn(
                BfCnnConfig {
                    image_channels: self.image_channels,
                    channels: self.channels,
                    layers: self.layers,
                }
                .init(device),
            ),
            Arch::BfUnet2020 => Network::Unet2020(
                BfUnet2020Config {
                    image_channels: self.image_channels,
                }
                .init(device),
            ),
        };
        number_params(net)
    }
}

/// A bias-free denoising network of either architecture. (Boxing the larger variant would buy
/// nothing: there is one network per run, and the variants hold handles, not weights.)
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Network {
    /// BF-UNet.
    Unet(BfUnet),
    /// BF-CNN.
    Cnn(BfCnn),
    /// The 2020 UNet.
    Unet2020(BfUnet2020),
}

impl Network {
    /// The predicted noise, net(y).
    ///
    /// # Shapes
    /// `y`: `[n, c, h, w]` → `[n, c, h, w]`.
    pub fn forward(&self, y: Tensor<4>, mode: Mode) -> Tensor<4> {
        match self {
            Network::Unet(n) => n.forward(y, mode),
            Network::Cnn(n) => n.forward(y, mode),
            // no normalisation: the same function in either mode
            Network::Unet2020(n) => n.forward_with(y, &mut Relus::Apply),
        }
    }

    /// The network at `y` (one image, eval mode) with its ReLU pattern frozen: a linear map,
    /// exactly the Jacobian of net at y (bias-free and piecewise linear), whose adjoint
    /// [`Linearized::vjp`] applies to many vectors for the price of this one forward pass.
    pub fn linearize(&self, y: Tensor<4>) -> Linearized<'_> {
        let mut masks = Vec::new();
        let output = self.forward_with(y, Mode::Eval, &mut Relus::Record(&mut masks));
        Linearized {
            net: self,
            masks,
            output,
        }
    }

    fn forward_with(&self, y: Tensor<4>, mode: Mode, relus: &mut Relus<'_>) -> Tensor<4> {
        match self {
            Network::Unet(n) => n.forward_with(y, mode, relus),
            Network::Cnn(n) => n.forward_with(y, mode, relus),
            Network::Unet2020(n) => n.forward_with(y, relus),
        }
    }

    /// The configuration the network was built from (as far as its shape tells: the fields of
    /// the other architecture are 0).
    pub fn config(&self) -> NetConfig {
        match self {
            Network::Unet(n) => {
                let c = n.config();
                NetConfig {
                    arch: Arch::BfUnet,
                    image_channels: c.image_channels,
                    channels: c.channels,
                    blocks: c.blocks,
                    layers: 0,
                }
            }
            Network::Cnn(n) => {
                let c = n.config();
                NetConfig {
                    arch: Arch::BfCnn,
                    image_channels: c.image_channels,
                    channels: c.channels,
                    blocks: 0,
                    layers: c.layers,
                }
            }
            Network::Unet2020(n) => NetConfig {
                arch: Arch::BfUnet2020,
                image_channels: n.config().image_channels,
                channels: 32,
                blocks: 0,
                layers: 0,
            },
        }
    }

    /// Number of trainable parameters (burn's count also includes the norms' running
    /// statistics, which are not trained).
    pub fn param_count(&self) -> usize {
        let running = match self {
            Network::Unet(n) => n.running_statistics(),
            Network::Cnn(n) => n.running_statistics(),
            Network::Unet2020(_) => 0,
        };
        self.num_params() - running
    }

    /// The denoised image x̂ = y − net(y).
    ///
    /// # Shapes
    /// `y`: `[n, c, h, w]` → `[n, c, h, w]`.
    pub fn denoise(&self, y: Tensor<4>, mode: Mode) -> Tensor<4> {
        match self {
            // it computes x̂ itself: y − (y − x̂) would lose x̂'s low bits where y ≫ x̂
            Network::Unet2020(n) => n.denoised(y),
            _ => y.clone() - self.forward(y, mode),
        }
    }
}

/// A network linearized at one input; see [`Network::linearize`].
pub struct Linearized<'a> {
    net: &'a Network,
    masks: Vec<Tensor<4>>,
    output: Tensor<4>,
}

impl Linearized<'_> {
    /// net(y) at the linearization point, from the same forward pass.
    pub fn output(&self) -> &Tensor<4> {
        &self.output
    }

    /// ∂net/∂y·vₖ for each vₖ of the batch `vs`: the forward pass with the ReLU patterns
    /// frozen (exact, unlike finite differences, which are wrong wherever ±εv flips a ReLU).
    ///
    /// # Shapes
    /// `vs`: `[k, c, h, w]` (the linearization point's c, h, w) → `[k, c, h, w]`.
    pub fn jvp(&self, vs: Tensor<4>) -> Tensor<4> {
        self.net
            .forward_with(vs, Mode::Eval, &mut Relus::Frozen(self.masks.iter()))
    }

    /// vₖᵀ·∂net/∂y for each vₖ of the batch `vs`.
    ///
    /// # Shapes
    /// `vs`: `[k, c, h, w]` (the linearization point's c, h, w) → `[k, c, h, w]`.
    pub fn vjp(&self, vs: Tensor<4>) -> Tensor<4> {
        let masks = self.masks.clone();
        match self.net {
            Network::Unet(n) => n.adjoint(vs, masks),
            Network::Cnn(n) => n.adjoint(vs, masks),
            Network::Unet2020(n) => n.adjoint(vs, masks),
        }
    }
}

/// A 3×3 convolution with padding 1 and, by construction, no bias.
pub(crate) fn new_conv3x3(c_in: usize, c_out: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .init(device)
}

/// Test helper: a network trained for `steps` Adam steps to denoise `size`×`size` disks.
/// Freshly initialised gains are at most 0.025 (the paper's init), so an untrained network's
/// residual is tiny and f(y) ≈ y; identity tests need a network whose output matters.
#[cfg(test)]
pub(crate) fn briefly_trained(cfg: &NetConfig, size: usize, steps: usize) -> Network {
    use crate::data::synthetic::{Disks, Family};
    use burn::optim::{AdamConfig, GradientsParams};
    let device = Device::flex().autodiff();
    let mut net = cfg.init(&device, 5);
    let mut optim = AdamConfig::new().init();
    let x = Family::Disks(Disks {}).generate(size, 8, 1).unwrap();
    let x = if cfg.image_channels == 3 {
        let [n, _, h, w] = x.shape();
        let data = (0..n).flat_map(|i| x.image(i).repeat(3)).collect();
        crate::data::Images::new(data, [n, 3, h, w])
    } else {
        x
    };
    for step in 0..steps {
        let noise = crate::analysis::metrics::add_noise(
            &crate::data::Images::zeros(x.shape()),
            0.2,
            step as u64,
        );
        let (xt, nt) = (x.to_tensor(&device), noise.to_tensor(&device));
        let loss = (net.forward(xt + nt.clone(), Mode::Train) - nt)
            .square()
            .sum();
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(1e-2, net, grads);
    }
    net.valid()
}

/// Gives parameters the ids 1, 2, 3, … in visiting order.
///
/// Optimizer state is keyed by parameter id, and safetensors does not store ids, so a network
/// rebuilt from a checkpoint must get the same ids as the one that was saved for its Adam moments
/// to find their parameters again.
fn number_params(net: Network) -> Network {
    struct Numbering(u64);
    impl ModuleMapper for Numbering {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            self.0 += 1;
            let (_, value, mapper) = param.consume();
            Param::from_mapped_value(ParamId::from(self.0), value, mapper)
        }
    }
    net.map(&mut Numbering(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::jacobian::{full, matvec};
    use crate::data::Images;
    use crate::denoise::{Denoiser, Learned, Linearize};
    use crate::rng::{stream, Purpose};

    fn random(shape: [usize; 4], seed: u64) -> Images {
        Images::standard_normal(shape, &mut stream(seed, Purpose::Probe, 0))
    }

    const ARCHS: [Arch; 3] = [Arch::BfUnet, Arch::BfCnn, Arch::BfUnet2020];

    fn small(arch: Arch) -> NetConfig {
        NetConfig {
            arch,
            image_channels: 1,
            channels: if arch == Arch::BfUnet2020 { 32 } else { 8 },
            blocks: 2,
            layers: 5,
        }
    }

    /// A network whose output matters (see [`briefly_trained`]).
    fn trained_stats(cfg: &NetConfig, _device: &Device) -> Network {
        briefly_trained(cfg, 12, 15)
    }

    fn rel_err(a: &[f32], b: &[f32]) -> f64 {
        let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
        let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
        (num / den.max(1e-30)).sqrt()
    }

    #[test]
    fn bias_free_homogeneity_in_eval_mode() {
        let device = Device::flex();
        for arch in ARCHS {
            for channels in [1, 3] {
                let cfg = NetConfig {
                    image_channels: channels,
                    ..small(arch)
                };
                let net = trained_stats(&cfg, &device);
                // 13×11: not a multiple of 4, so BF-UNet's padding is exercised too
                let y = random([2, channels, 13, 11], 1);
                let f = Images::from_tensor(net.denoise(y.to_tensor(&device), Mode::Eval));
                for a in [0.5f32, 2.0, 7.0] {
                    let mut ay = y.clone();
                    ay.as_mut_slice().iter_mut().for_each(|v| *v *= a);
                    let f_ay = Images::from_tensor(net.denoise(ay.to_tensor(&device), Mode::Eval));
                    let af: Vec<f32> = f.as_slice().iter().map(|v| v * a).collect();
                    let e = rel_err(f_ay.as_slice(), &af);
                    assert!(e < 1e-4, "{arch:?} C={channels} a={a}: relative error {e}");
                }
            }
        }
    }

    /// The linearized network's adjoint is the same map that reverse-mode autodiff computes
    /// through the full network (BF-UNet at an odd size, so padding is part of it).
    #[test]
    fn linearized_vjp_equals_autodiff() {
        let device = Device::flex();
        let adev = device.clone().autodiff();
        for arch in ARCHS {
            let net = trained_stats(&small(arch), &device);
            let (y, vs) = (random([1, 1, 13, 11], 7), random([3, 1, 13, 11], 8));
            let ours = Images::from_tensor(
                net.linearize(y.to_tensor(&device))
                    .vjp(vs.to_tensor(&device)),
            );
            let anet = net.clone().to_device(&adev).no_grad();
            let y_rep = y.to_tensor(&adev).repeat_dim(0, 3).require_grad();
            let out = anet.forward(y_rep.clone(), Mode::Eval);
            let grads = (out * vs.to_tensor(&adev)).sum().backward();
            let want = Images::from_tensor(y_rep.grad(&grads).expect("tracked"));
            let e = rel_err(ours.as_slice(), want.as_slice());
            assert!(e < 1e-5, "{arch:?}: relative error {e}");
        }
    }

    /// The frozen-pattern forward pass is the Jacobian: J(y)·y = net(y) (bias-free, piecewise
    /// linear) and ⟨u, Jv⟩ = ⟨Jᵀu, v⟩ with the adjoint pass, for both architectures.
    #[test]
    fn linearized_jvp_is_the_jacobian_and_the_adjoints_transpose() {
        let device = Device::flex();
        for arch in ARCHS {
            let net = trained_stats(&small(arch), &device);
            let y = random([1, 1, 13, 11], 9);
            let lin = net.linearize(y.to_tensor(&device));
            let jy = Images::from_tensor(lin.jvp(y.to_tensor(&device)));
            let out = Images::from_tensor(net.forward(y.to_tensor(&device), Mode::Eval));
            let e = rel_err(jy.as_slice(), out.as_slice());
            assert!(e < 1e-5, "{arch:?}: ‖J(y)y − net(y)‖/‖net(y)‖ = {e}");
            let (us, vs) = (random([2, 1, 13, 11], 10), random([2, 1, 13, 11], 11));
            let jv = Images::from_tensor(lin.jvp(vs.to_tensor(&device)));
            let ju = Images::from_tensor(lin.vjp(us.to_tensor(&device)));
            for k in 0..2 {
                let dot = |a: &[f32], b: &[f32]| -> f64 {
                    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
                };
                let (lhs, rhs) = (dot(us.image(k), jv.image(k)), dot(ju.image(k), vs.image(k)));
                assert!(
                    (lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0),
                    "{arch:?}: ⟨u, Jv⟩ = {lhs}, ⟨Jᵀu, v⟩ = {rhs}"
                );
            }
        }
    }

    #[test]
    fn denoiser_equals_jacobian_times_input() {
        let device = Device::flex();
        for arch in ARCHS {
            let net = trained_stats(&small(arch), &device);
            let probe = Learned::new(net, device.clone(), 1);
            let y = random([1, 1, 8, 8], 2);
            let jac = full(&*probe.linearize(&y, None).unwrap(), 16);
            let f = probe.denoise(&y, None).unwrap();
            let jy = matvec(&jac, y.as_slice());
            let e = rel_err(&jy, f.as_slice());
            assert!(e < 1e-4, "{arch:?}: ‖Jy − f(y)‖/‖f(y)‖ = {e}");
        }
    }

    #[test]
    fn vjp_jacobian_matches_finite_differences() {
        let device = Device::flex();
        let net = trained_stats(&small(Arch::BfUnet), &device);
        let probe = Learned::new(net, device, 1);
        let y = random([1, 1, 8, 8], 4);
        let d = y.dim();
        let jac = full(&*probe.linearize(&y, None).unwrap(), 64);
        // central differences along a few random directions u: (f(y+εu) − f(y−εu))/2ε = J u
        let eps = 1e-2f32;
        for k in 0..3 {
            let u = random([1, 1, 8, 8], 100 + k);
            let shift = |s: f32| {
                let mut v = y.clone();
                v.as_mut_slice()
                    .iter_mut()
                    .zip(u.as_slice())
                    .for_each(|(a, b)| *a += s * b);
                probe.denoise(&v, None).unwrap()
            };
            let (fp, fm) = (shift(eps), shift(-eps));
            let fd: Vec<f32> = fp
                .as_slice()
                .iter()
                .zip(fm.as_slice())
                .map(|(a, b)| (a - b) / (2.0 * eps))
                .collect();
            let ju = matvec(&jac, u.as_slice());
            // a ReLU network is piecewise linear: differences are exact unless a kink is crossed
            let e = rel_err(&fd, &ju);
            assert!(
                e < 1e-3 * (d as f64).sqrt(),
                "direction {k}: relative error {e}"
            );
        }
    }

    /// A training step leaves the norms' newest statistics pending in burn's running state;
    /// what is saved right after it must include them (a checkpoint between two validations
    /// did not, and a run resumed from it drifted from an uninterrupted one).
    #[test]
    fn saved_weights_include_the_last_steps_statistics() {
        let device = Device::flex();
        let cfg = small(Arch::BfUnet);
        let net = trained_stats(&cfg, &device);
        let y = random([4, 1, 8, 8], 3).to_tensor(&device);
        drop(net.forward(y.clone(), Mode::Train)); // one more update, pending
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("model.safetensors");
        checkpoint::save_weights(&net, &cfg, &p).unwrap();
        let (back, _) = checkpoint::load_weights(&p, &device).unwrap();
        let a = Images::from_tensor(net.valid().denoise(y.clone(), Mode::Eval));
        let b = Images::from_tensor(back.denoise(y, Mode::Eval));
        assert_eq!(a, b, "the last step's statistics were not saved");
    }

    /// A network tells the configuration it was built from.
    #[test]
    fn a_network_knows_its_configuration() {
        let device = Device::flex();
        for arch in ARCHS {
            let mut cfg = small(arch);
            cfg.image_channels = 3;
            let got = cfg.init(&device, 0).config();
            assert_eq!(
                (got.arch, got.image_channels, got.channels),
                (arch, 3, cfg.channels)
            );
            match arch {
                Arch::BfUnet => assert_eq!(got.blocks, cfg.blocks),
                Arch::BfCnn => assert_eq!(got.layers, cfg.layers),
                Arch::BfUnet2020 => assert!(got.validate().is_ok()),
            }
        }
    }

    /// The FLOP count is twice the multiply-adds of the convolutions: for BF-CNN (every weight
    /// used once per pixel) exactly 2 × weights × pixels; for BF-UNet it scales with the
    /// pixels and is dominated the same way by its weights (each used once per pixel of its
    /// scale, so between 2 × weights × the coarsest scale's pixels and × the finest's).
    #[test]
    fn forward_flops_count_the_convolutions() {
        let device = Device::flex();
        let cnn = NetConfig {
            arch: Arch::BfCnn,
            image_channels: 1,
            channels: 8,
            blocks: 0,
            layers: 5,
        };
        let net = cnn.init(&device, 0);
        let gains = 8 * 3; // one per channel in the 3 hidden layers' norms
        let weights = (net.param_count() - gains) as u64;
        assert_eq!(cnn.forward_flops(12, 10), 2 * weights * 120);

        let unet = NetConfig {
            arch: Arch::BfUnet,
            ..small(Arch::BfUnet)
        };
        let f = unet.forward_flops(16, 16);
        assert_eq!(unet.forward_flops(32, 32), 4 * f);
        let weights = unet.init(&device, 0).param_count() as u64;
        assert!(f < 2 * weights * 256 && f > 2 * weights * 256 / 16, "{f}");
    }

    #[test]
    fn weights_round_trip_through_safetensors() {
        let device = Device::flex();
        let cfg = small(Arch::BfUnet);
        let net = trained_stats(&cfg, &device);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("model.safetensors");
        checkpoint::save_weights(&net, &cfg, &p).unwrap();
        let (back, cfg2) = checkpoint::load_weights(&p, &device).unwrap();
        assert_eq!(cfg, cfg2);
        let y = random([2, 1, 8, 8], 7).to_tensor(&device);
        let a = Images::from_tensor(net.denoise(y.clone(), Mode::Eval));
        let b = Images::from_tensor(back.denoise(y, Mode::Eval));
        assert_eq!(
            a, b,
            "eval outputs differ: running statistics or weights were lost"
        );

        std::fs::write(&p, b"not safetensors").unwrap();
        let err = checkpoint::load_weights(&p, &device)
            .unwrap_err()
            .to_string();
        assert!(err.contains("model.safetensors"), "{err}");
    }

    #[test]
    fn paper_unet_has_7_6_million_parameters() {
        let cfg = NetConfig {
            arch: Arch::BfUnet,
            image_channels: 1,
            channels: 64,
            blocks: 3,
            layers: 20,
        };
        let n = cfg.init(&Device::flex(), 0).param_count();
        // the PyTorch reference (bench/reference.py) counts 7 696 192
        assert_eq!(n, 7_696_192, "{n} parameters");
    }
}
