//! A trained bias-free network as a [`Denoiser`]: blind (it ignores σ), batch by batch, in
//! eval mode; its exact Jacobian products come from the network with y's ReLU pattern frozen.

use super::{check_vectors, one_image, DenoiseError, Denoiser, JacobianAt, Linearize};
use crate::data::Images;
use crate::nn::{Linearized, Mode, Network};
use burn::tensor::{Device, Tensor};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A trained network used as a blind denoiser, in eval mode, batch by batch.
pub struct Learned {
    net: Network,
    device: Device,
    image_channels: usize,
    batch: usize,
    /// On a GPU, the largest batch that has run since one was refused for lack of memory (0:
    /// none refused yet).
    fitted: AtomicUsize,
}

impl Learned {
    /// Wraps a network living on `device` (not an autodiff device: nothing is differentiated).
    pub fn new(net: Network, device: Device, image_channels: usize) -> Self {
        Self {
            net,
            device,
            image_channels,
            batch: 64,
            fitted: AtomicUsize::new(0),
        }
    }

    /// Images per forward pass (memory vs speed); 64 by default.
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// On a GPU, the batch it ran after refusing the set one for lack of memory (`None`: none
    /// refused).
    pub fn fitted_batch(&self) -> Option<usize> {
        match self.fitted.load(Ordering::Relaxed) {
            0 => None,
            fitted => Some(fitted),
        }
    }

    /// The network.
    pub fn net(&self) -> &Network {
        &self.net
    }

    /// Gives the network back.
    pub fn into_net(self) -> Network {
        self.net
    }

    /// The device it runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Denoising on a GPU, which states no free memory to plan by: batches of the set size until
    /// the device refuses one, then halves of it until one runs, and that size from then on. An
    /// image's output does not depend on its batch, so this changes no result. (With burn 0.22's
    /// wgpu backend a refused allocation can leave the device unable to take new memory pages,
    /// so after one refusal the smaller batches may fail too; the error then says to ask for a
    /// smaller batch from the start.)
    fn denoise_on_gpu(&self, y: &Images) -> Result<Images, DenoiseError> {
        let mut parts = Vec::new();
        let mut start = 0;
        while start < y.len() {
            let batch = match self.fitted.load(Ordering::Relaxed) {
                0 => self.batch,
                fitted => fitted.min(self.batch),
            };
            let idx: Vec<usize> = (start..(start + batch).min(y.len())).collect();
            let run = crate::device::within_memory(|| {
                let t = y.select(&idx).to_tensor(&self.device);
                Images::try_from_tensor(self.net.denoise(t, Mode::Eval))
            });
            match run {
                Ok(part) => {
                    parts.push(part);
                    start += idx.len();
                }
                Err(reason) if idx.len() == 1 => {
                    let [_, _, h, w] = y.shape();
                    return Err(DenoiseError::DeviceMemory(Box::new(
                        crate::resources::DeviceShortfall {
                            device: "the GPU".into(),
                            batch: self.batch,
                            h,
                            w,
                            fits: None,
                            reason,
                            purpose: "",
                        },
                    )));
                }
                Err(_) => {
                    self.device.memory_cleanup();
                    self.fitted.store(idx.len() / 2, Ordering::Relaxed);
                }
            }
        }
        Ok(Images::concat(&parts))
    }

    /// Images per pass for images of `shape`: the set batch, fewer when its eval pass would take
    /// more than half the host memory available (large images: the paper's network needs about
    /// 0.9 GB per 512×512 image).
    fn batch_for(&self, [_, h, w]: [usize; 3]) -> usize {
        // a batch this small fits anywhere: only a larger one is worth asking the system about
        // (this runs at every step of a sampler)
        const SURELY_FITS: u64 = 64 << 20;
        if !crate::device::is_host(&self.device) {
            return self.batch;
        }
        let per_image = self.net.config().inference_bytes(1, h, w).max(1);
        if per_image * self.batch as u64 <= SURELY_FITS {
            return self.batch;
        }
        match crate::resources::available_memory() {
            Some(available) => self.batch.min((available / 2 / per_image) as usize).max(1),
            None => self.batch,
        }
    }
}

impl Denoiser for Learned {
    fn denoise(&self, y: &Images, _sigma: Option<f32>) -> Result<Images, DenoiseError> {
        if y.shape()[1] != self.image_channels {
            return Err(DenoiseError::Shape {
                expected: format!("{} channel(s)", self.image_channels),
                got: y.image_shape(),
            });
        }
        if !crate::device::is_host(&self.device) {
            return self.denoise_on_gpu(y);
        }
        let idx: Vec<usize> = (0..y.len()).collect();
        let parts: Vec<Images> = idx
            .chunks(self.batch_for(y.image_shape()))
            .map(|chunk| {
                let t = y.select(chunk).to_tensor(&self.device);
                Images::from_tensor(self.net.denoise(t, Mode::Eval))
            })
            .collect();
        Ok(Images::concat(&parts))
    }

    fn name(&self) -> String {
        "network".into()
    }

    fn is_blind(&self) -> bool {
        true
    }
}

impl Linearize for Learned {
    /// Exact: the network with y's ReLU pattern frozen is linear and equals its Jacobian
    /// ([`Network::linearize`]); one forward pass serves any number of products.
    fn linearize(
        &self,
        y: &Images,
        _sigma: Option<f32>,
    ) -> Result<Box<dyn JacobianAt + '_>, DenoiseError> {
        one_image(y)?;
        if y.shape()[1] != self.image_channels {
            return Err(DenoiseError::Shape {
                expected: format!("{} channel(s)", self.image_channels),
                got: y.image_shape(),
            });
        }
        let t = y.to_tensor(&self.device);
        let lin = self.net.linearize(t.clone());
        Ok(Box::new(LearnedAt {
            device: &self.device,
            denoised: Images::from_tensor(t - lin.output().clone()),
            lin,
        }))
    }
}

/// A [`Learned`] network at one image. With f(y) = y − net(y), J·v = v − ∂net/∂y·v.
struct LearnedAt<'a> {
    device: &'a Device,
    lin: Linearized<'a>,
    denoised: Images,
}

impl JacobianAt for LearnedAt<'_> {
    fn denoised(&self) -> &Images {
        &self.denoised
    }
    fn jvp(&self, vs: &Images) -> Images {
        check_vectors(vs, self.shape());
        self.apply(vs, &|v| self.lin.jvp(v))
    }
    fn vjp(&self, vs: &Images) -> Images {
        check_vectors(vs, self.shape());
        self.apply(vs, &|v| self.lin.vjp(v))
    }
}

impl LearnedAt<'_> {
    /// v − product(v) for every vector of `vs`. On a GPU a set of vectors the device has no
    /// memory for is split in halves until the parts run (each vector's product does not depend
    /// on the others); one vector that does not fit is a failure of the device, reported as
    /// such.
    fn apply(&self, vs: &Images, product: &dyn Fn(Tensor<4>) -> Tensor<4>) -> Images {
        let residual = |vs: &Images| {
            let v = vs.to_tensor(self.device);
            v.clone() - product(v)
        };
        if crate::device::is_host(self.device) {
            return Images::from_tensor(residual(vs));
        }
        match crate::device::within_memory(|| Images::try_from_tensor(residual(vs))) {
            Ok(images) => images,
            Err(reason) if vs.len() == 1 => {
                panic!("the GPU has no memory left for one Jacobian-vector product ({reason})")
            }
            Err(_) => {
                self.device.memory_cleanup();
                let half = vs.len() / 2;
                let (a, b): (Vec<usize>, Vec<usize>) =
                    ((0..half).collect(), (half..vs.len()).collect());
                let parts = [
                    self.apply(&vs.select(&a), product),
                    self.apply(&vs.select(&b), product),
                ];
                Images::concat(&parts)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::Family;

    fn learned(size: usize) -> (Learned, Images) {
        use crate::nn::{Arch, NetConfig};
        let cfg = NetConfig {
            arch: Arch::BfUnet,
            image_channels: 1,
            channels: 8,
            blocks: 2,
            layers: 5,
        };
        let net = crate::nn::briefly_trained(&cfg, size, 15);
        let x = Family::Disks(Default::default())
            .generate(size, 1, 1)
            .unwrap();
        let y = crate::analysis::metrics::add_noise(&x, 0.2, 3);
        (Learned::new(net, Device::flex(), 1), y)
    }

    /// The network runs its set batch on small images and fewer at a time when a batch would
    /// not fit in half the memory; the result does not depend on it.
    #[test]
    fn learned_batches_shrink_for_images_too_large_for_memory() {
        let (net, y) = learned(8);
        assert_eq!(net.batch_for([1, 8, 8]), 64);
        if crate::resources::available_memory().is_some() {
            // 20000² images: over 100 GB per image for this network's activations
            assert_eq!(net.batch_for([1, 20_000, 20_000]), 1);
        }
        let many = Images::concat(&[y.clone(), y.clone(), y.clone()]);
        let whole = net.denoise(&many, None).unwrap();
        let net = net.with_batch(1);
        assert_eq!(net.denoise(&many, None).unwrap(), whole);
    }

    #[test]
    fn lanczos_and_hutchinson_match_the_dense_network_jacobian_at_32x32() {
        use crate::analysis::jacobian::{full, symmetric_product, vjp_flat};
        use crate::analysis::lanczos::{hutchinson, lanczos};
        use crate::analysis::spectrum::symmetric_eigen;
        let (net, y) = learned(32);
        let d = y.dim();
        let at = net.linearize(&y, None).unwrap();
        let jac = full(&*at, 128);
        let (dense, _) = symmetric_eigen(&jac, d).unwrap();
        let top = lanczos(|v| symmetric_product(&*at, v), d, 4, 60, 1);
        for (k, (a, b)) in top.values.iter().zip(&dense).enumerate() {
            assert!(
                (a - b).abs() < 2e-2 * dense[0].abs(),
                "λ{k}: Lanczos {a} vs dense {b}"
            );
        }
        let exact: f64 = (0..d).map(|i| jac[i * d + i] as f64).sum();
        assert!(
            exact < d as f64 - 1.0,
            "the probe network is trivial (tr J = {exact})"
        );
        let est = hutchinson(|vs| vjp_flat(&*at, vs), d, 64, 2);
        // 3 standard errors, plus float rounding of a sum of D products
        assert!(
            (est.mean - exact).abs() < 3.0 * est.std_error + 1e-6 * d as f64,
            "Hutchinson {} ± {} vs tr J = {exact}",
            est.mean,
            est.std_error
        );
    }

    #[test]
    fn network_jvp_matches_its_vjp_jacobian() {
        use crate::analysis::jacobian::{full, matvec, relative_error};
        let (net, y) = learned(8);
        let at = net.linearize(&y, None).unwrap();
        let jac = full(&*at, 64);
        let vs = crate::analysis::metrics::add_noise(&Images::zeros([2, 1, 8, 8]), 1.0, 4);
        let jv = at.jvp(&vs);
        for k in 0..2 {
            let e = relative_error(jv.image(k), &matvec(&jac, vs.image(k)));
            assert!(e < 1e-4, "JVP {k}: relative error {e}");
        }
        assert!(net.linearize(&vs, None).is_err(), "a batch is refused");
    }
}
