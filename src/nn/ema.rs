//! The exponential moving average of a network's weights during training (Polyak averaging, as
//! in EDM and most diffusion-model training): w̄ ← β·w̄ + (1 − β)·w after every step. The
//! average of the last ~1/(1 − β) steps' weights denoises better than the last weights when the
//! learning rate is still large, and is what evaluation, sampling and analysis use by default.
//! A weighted sum of bias-free networks with the same ReLU structure is again bias-free.

use super::Network;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// The decay to use at step `step` (0-based) for a target decay `decay`: min(β, (1 + t)/(10 + t)),
/// so that early on the average does not hold on to the random initialisation.
pub fn decay_at(decay: f64, step: u64) -> f64 {
    decay.min((1.0 + step as f64) / (10.0 + step as f64))
}

/// w̄ ← β·w̄ + (1 − β)·w, parameter by parameter (norm running statistics included). Both
/// networks must have the same architecture (they visit their parameters in the same order).
pub fn update(average: Network, current: &Network, decay: f64) -> Network {
    struct Collect(Vec<Tensor<1>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            let n = value.shape().num_elements();
            self.0.push(value.reshape([n]));
        }
    }
    struct Blend {
        current: std::vec::IntoIter<Tensor<1>>,
        decay: f64,
    }
    impl ModuleMapper for Blend {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, value, mapper) = param.consume();
            let w = self.current.next().expect("same architecture");
            let shape = value.shape();
            let blended =
                value.mul_scalar(self.decay) + w.reshape(shape).mul_scalar(1.0 - self.decay);
            Param::from_mapped_value(id, blended, mapper)
        }
    }
    let mut collect = Collect(Vec::new());
    current.visit(&mut collect);
    average.map(&mut Blend {
        current: collect.0.into_iter(),
        decay,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Images;
    use crate::nn::{Arch, Mode, NetConfig};
    use burn::tensor::Device;

    #[test]
    fn the_average_blends_weights_and_stays_bias_free() {
        let cfg = NetConfig {
            arch: Arch::BfUnet,
            image_channels: 1,
            channels: 4,
            blocks: 1,
            layers: 5,
        };
        let device = Device::flex();
        let (a, b) = (cfg.init(&device, 1), cfg.init(&device, 2));
        let y = crate::analysis::metrics::add_noise(&Images::zeros([1, 1, 8, 8]), 1.0, 3);
        let out = |n: &Network, y: &Images| {
            Images::from_tensor(n.forward(y.to_tensor(&device), Mode::Eval))
        };
        // β = 1 keeps the average, β = 0 takes the current weights
        let keep = update(a.clone(), &b, 1.0);
        assert_eq!(out(&keep, &y), out(&a, &y));
        let take = update(a.clone(), &b, 0.0);
        assert_eq!(out(&take, &y), out(&b, &y));
        let half = update(a.clone(), &b, 0.5);
        assert_ne!(out(&half, &y), out(&a, &y));
        // homogeneous: f(2y) = 2 f(y)
        let mut y2 = y.clone();
        y2.as_mut_slice().iter_mut().for_each(|v| *v *= 2.0);
        let (f, f2) = (out(&half, &y), out(&half, &y2));
        for (u, v) in f.as_slice().iter().zip(f2.as_slice()) {
            assert!((2.0 * u - v).abs() < 1e-5 * (1.0 + v.abs()));
        }
        assert_eq!(decay_at(0.999, 0), 0.1);
        assert_eq!(decay_at(0.5, 1000), 0.5);
    }
}
