//! The one trait every denoiser meets — learned networks and closed-form oracles alike — so that
//! samplers, restorers, Jacobian tools and metrics compare them with the same code (STYLE.md §4).
//!
//! - [`Learned`]: a trained bias-free network, blind (it ignores σ).
//! - [`EmpiricalOptimal`]: the MMSE denoiser of the empirical distribution of a training set,
//!   the perfectly memorizing denoiser: x̂(y) = Σᵢ wᵢ xᵢ, wᵢ ∝ exp(−‖y − xᵢ‖²/2σ²).
//! - [`Wiener`]: the MMSE denoiser of a stationary Gaussian field.
//! - [`disks::DiskOracle`]: the MMSE denoiser of the disk family, by importance sampling.
//! - [`shrinkage::DctShrinkage`]: a classical, non-learned reference (DCT hard thresholding).
//!
//! Beside it, [`Linearize`] gives exact products with a denoiser's Jacobian J(y) = ∂f/∂y, so
//! analysis opens networks and oracles through the same code (DESIGN.md): a network by its
//! frozen ReLU pattern, the Wiener filter in closed form, anything else by central differences
//! ([`FiniteDifferences`]).

pub mod disks;
mod empirical;
pub mod shrinkage;

pub use disks::DiskOracle;
pub use empirical::EmpiricalOptimal;
pub use shrinkage::DctShrinkage;

use crate::data::synthetic::{GaussianField, Hypothesis};
use crate::data::Images;
use crate::nn::{Linearized, Mode, Network};
use burn::tensor::{Device, Tensor};
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Errors of denoising.
#[derive(Debug, thiserror::Error)]
pub enum DenoiseError {
    /// An oracle needs the noise level and none was given.
    #[error("{0} needs the noise level σ")]
    NeedsSigma(&'static str),
    /// A Jacobian is taken at one image.
    #[error("a Jacobian is taken at one image, not a batch of {0}")]
    Batch(usize),
    /// The images do not have the shape the denoiser was built for.
    #[error("images are {got:?} (C, H, W) but the denoiser expects {expected}")]
    Shape {
        /// What the denoiser accepts.
        expected: String,
        /// What it got.
        got: [usize; 3],
    },
    /// The GPU refused the batch and every smaller one down to a single image (after one
    /// refusal burn's wgpu backend may refuse the rest; see [`Learned`]).
    #[error(transparent)]
    DeviceMemory(Box<crate::resources::DeviceShortfall>),
}

/// A denoiser: x̂ = f(y) for a batch of noisy images.
pub trait Denoiser {
    /// Denoises each image of `y`. `sigma` is the noise level when known; blind denoisers
    /// ignore it, oracles need it.
    ///
    /// # Shapes
    /// `y`: `[n, c, h, w]` → `[n, c, h, w]`.
    fn denoise(&self, y: &Images, sigma: Option<f32>) -> Result<Images, DenoiseError>;

    /// A short name for tables and figures.
    fn name(&self) -> String;

    /// Whether the output ignores σ. Callers may then batch images whose noise levels differ;
    /// for oracles they must call once per noise level.
    fn is_blind(&self) -> bool {
        false
    }
}

/// J(y) = ∂f/∂y at one image y, as a linear map.
///
/// # Shapes
/// Vectors are batches of image-shaped vectors `[k, c, h, w]` with y's c, h, w; each is
/// multiplied separately.
pub trait JacobianAt {
    /// f(y), computed while linearizing.
    fn denoised(&self) -> &Images;
    /// The shape of y, `[1, c, h, w]`.
    fn shape(&self) -> [usize; 4] {
        self.denoised().shape()
    }
    /// J·vₖ for every vₖ.
    fn jvp(&self, vs: &Images) -> Images;
    /// vₖᵀ·J (= Jᵀvₖ) for every vₖ.
    fn vjp(&self, vs: &Images) -> Images;
}

/// A denoiser whose Jacobian can be taken at an image.
pub trait Linearize: Denoiser {
    /// J(y) (one image), for any number of products. `sigma` is passed to the denoiser as in
    /// [`Denoiser::denoise`].
    fn linearize(
        &self,
        y: &Images,
        sigma: Option<f32>,
    ) -> Result<Box<dyn JacobianAt + '_>, DenoiseError>;
}

fn one_image(y: &Images) -> Result<(), DenoiseError> {
    match y.len() {
        1 => Ok(()),
        n => Err(DenoiseError::Batch(n)),
    }
}

fn check_vectors(vs: &Images, shape: [usize; 4]) {
    assert_eq!(
        vs.image_shape(),
        [shape[1], shape[2], shape[3]],
        "Jacobian products take image-shaped vectors"
    );
}

/// The Jacobian of any denoiser by central differences: J·v ≈ (f(y + εv) − f(y − εv))/2ε,
/// with ε scaled to ‖v‖. Exact for affine denoisers (the Wiener filter); for others the error
/// is O(ε²) wherever f is smooth. vᵀ·J needs the whole matrix: it is built once, on the first
/// call, from D products with the unit vectors (2D denoiser calls, batched), so use it for
/// small images.
pub struct FiniteDifferences<'a, D: Denoiser + ?Sized> {
    denoiser: &'a D,
    y: Images,
    fy: Images,
    sigma: Option<f32>,
    eps: f32,
    /// Row-major D×D, built on the first [`JacobianAt::vjp`].
    full: OnceLock<Vec<f32>>,
}

impl<'a, D: Denoiser + ?Sized> FiniteDifferences<'a, D> {
    /// Differences of size `eps` along each unit direction v/‖v‖, around `y`.
    pub fn new(
        denoiser: &'a D,
        y: &Images,
        sigma: Option<f32>,
        eps: f32,
    ) -> Result<Self, DenoiseError> {
        one_image(y)?;
        Ok(Self {
            fy: denoiser.denoise(y, sigma)?,
            denoiser,
            y: y.clone(),
            sigma,
            eps,
            full: OnceLock::new(),
        })
    }

    fn try_jvp(&self, vs: &Images) -> Result<Images, DenoiseError> {
        let d = self.y.dim();
        let mut out = Vec::with_capacity(vs.as_slice().len());
        for start in (0..vs.len()).step_by(32) {
            let end = (start + 32).min(vs.len());
            let mut batch = Vec::with_capacity(2 * (end - start) * d);
            let mut steps = Vec::new();
            for sign in [1.0f32, -1.0] {
                for k in start..end {
                    let v = vs.image(k);
                    let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
                    let step = if norm > 0.0 { self.eps / norm } else { 0.0 };
                    if sign > 0.0 {
                        steps.push(step);
                    }
                    batch.extend(
                        self.y
                            .as_slice()
                            .iter()
                            .zip(v)
                            .map(|(a, b)| a + sign * step * b),
                    );
                }
            }
            let n = end - start;
            let [_, c, h, w] = self.y.shape();
            let f = self
                .denoiser
                .denoise(&Images::new(batch, [2 * n, c, h, w]), self.sigma)?;
            for (r, step) in steps.iter().enumerate() {
                let scale = if *step > 0.0 { 0.5 / step } else { 0.0 };
                out.extend(
                    f.image(r)
                        .iter()
                        .zip(f.image(n + r))
                        .map(|(a, b)| (a - b) * scale),
                );
            }
        }
        Ok(Images::new(out, vs.shape()))
    }

    /// The whole Jacobian, row-major D×D (row i is ∂fᵢ/∂y), built on the first call.
    pub fn matrix(&self) -> &[f32] {
        self.full.get_or_init(|| {
            let d = self.y.dim();
            let [_, c, h, w] = self.y.shape();
            let mut basis = Images::zeros([d, c, h, w]);
            for i in 0..d {
                basis.as_mut_slice()[i * d + i] = 1.0;
            }
            // column j of J is J·eⱼ; transpose the columns into rows
            let cols = self.try_jvp(&basis).expect("the denoiser worked at y");
            (0..d * d)
                .map(|idx| cols.as_slice()[(idx % d) * d + idx / d])
                .collect()
        })
    }
}

impl<D: Denoiser + ?Sized> JacobianAt for FiniteDifferences<'_, D> {
    fn denoised(&self) -> &Images {
        &self.fy
    }
    fn jvp(&self, vs: &Images) -> Images {
        check_vectors(vs, self.y.shape());
        // the denoiser already worked at y with this σ and shape, so it works near y
        self.try_jvp(vs).expect("the denoiser worked at y")
    }
    fn vjp(&self, vs: &Images) -> Images {
        check_vectors(vs, self.y.shape());
        let (jac, d) = (self.matrix(), self.y.dim());
        let mut out = vec![0.0f32; vs.as_slice().len()];
        for (k, o) in out.chunks_exact_mut(d).enumerate() {
            for (row, v) in jac.chunks_exact(d).zip(vs.image(k)) {
                o.iter_mut().zip(row).for_each(|(a, b)| *a += v * b);
            }
        }
        Images::new(out, vs.shape())
    }
}

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

/// Where an oracle takes its noise level from.
#[derive(Clone, Debug, PartialEq)]
pub enum NoiseLevel {
    /// The σ the caller passes (an error when none is passed).
    Given,
    /// Estimated from each image by maximum likelihood; the passed σ is ignored. The oracle is
    /// then blind, like a trained network, which is what the samplers assume.
    Estimated,
    /// Unknown, with a prior over how the image was made (noise level, and possibly the
    /// field's scale): the posterior mean over those and x; blind.
    Prior(Vec<Hypothesis>),
}

/// The Wiener filter of a stationary Gaussian field: its exact MMSE denoiser.
pub struct Wiener {
    field: GaussianField,
    noise: NoiseLevel,
}

impl Wiener {
    /// The oracle for a field, at the noise level the caller gives.
    pub fn new(field: GaussianField) -> Self {
        Self {
            field,
            noise: NoiseLevel::Given,
        }
    }

    /// The blind oracle: each image's σ estimated by maximum likelihood.
    pub fn blind(field: GaussianField) -> Self {
        Self {
            field,
            noise: NoiseLevel::Estimated,
        }
    }

    /// The blind optimum for noise levels drawn from `prior` (σ, mass): the posterior mean over
    /// σ and x. With the prior a training run is fitted to
    /// ([`crate::train::TrainConfig::fitted_sigma_prior`]), the best any blind denoiser trained that way can
    /// do on average over that prior. At a low σ it can be worse than the noisy input: an image
    /// with little noise looks much like one with a little more.
    pub fn blind_optimum(field: GaussianField, prior: &[(f64, f64)]) -> Self {
        let hypotheses = prior
            .iter()
            .map(|&(sigma, mass)| Hypothesis {
                scale: 1.0,
                sigma,
                mass,
            })
            .collect();
        Self {
            field,
            noise: NoiseLevel::Prior(hypotheses),
        }
    }

    /// The homogeneous blind optimum: as [`Wiener::blind_optimum`], with the field's scale
    /// unknown as well (log-uniform over 1/8 … 8, noise relative to it): the best denoiser with
    /// f(a·y) = a·f(y) — what a bias-free network can at most reach — since it cannot tell a
    /// field of amplitude a with noise aσ from one of amplitude 1 with noise σ.
    pub fn homogeneous_optimum(field: GaussianField, prior: &[(f64, f64)]) -> Self {
        const SCALES: usize = 61;
        let hypotheses = (0..SCALES)
            .flat_map(|i| {
                let scale = 8f64.powf(2.0 * i as f64 / (SCALES - 1) as f64 - 1.0);
                prior
                    .iter()
                    .map(move |&(sigma, mass)| Hypothesis { scale, sigma, mass })
            })
            .collect();
        Self {
            field,
            noise: NoiseLevel::Prior(hypotheses),
        }
    }
}

impl Denoiser for Wiener {
    fn denoise(&self, y: &Images, sigma: Option<f32>) -> Result<Images, DenoiseError> {
        let [_, c, h, w] = y.shape();
        if c != 1 {
            return Err(DenoiseError::Shape {
                expected: "1 channel".into(),
                got: y.image_shape(),
            });
        }
        // the σ of a filter told it (read only by NoiseLevel::Given)
        let given = match self.noise {
            NoiseLevel::Given => sigma.ok_or(DenoiseError::NeedsSigma("the Wiener filter"))? as f64,
            _ => 0.0,
        };
        // images are independent; the posterior over a prior takes a while per image
        let out: Vec<Vec<f32>> = (0..y.len())
            .into_par_iter()
            .map(|i| {
                let img = y.image(i);
                match &self.noise {
                    NoiseLevel::Given => self.field.wiener(img, h, w, given),
                    NoiseLevel::Estimated => {
                        let s = self.field.estimate_sigma(img, h, w);
                        self.field.wiener(img, h, w, s)
                    }
                    NoiseLevel::Prior(prior) => self.field.posterior_mean(img, h, w, prior),
                }
            })
            .collect();
        Ok(Images::new(out.concat(), y.shape()))
    }

    fn name(&self) -> String {
        "wiener".into()
    }

    fn is_blind(&self) -> bool {
        self.noise != NoiseLevel::Given
    }
}

impl Linearize for Wiener {
    /// In closed form when σ is given: f(y) = m + B diag(g) Bᵀ (y − m) with B the covariance's
    /// eigenbasis (the DFT for a periodic field), so J = B diag(g) Bᵀ with the gains
    /// g = p/(p + σ²), symmetric. The blind filter's σ depends on y, so its
    /// Jacobian is taken by central differences.
    fn linearize(
        &self,
        y: &Images,
        sigma: Option<f32>,
    ) -> Result<Box<dyn JacobianAt + '_>, DenoiseError> {
        one_image(y)?;
        match self.noise {
            NoiseLevel::Estimated | NoiseLevel::Prior(_) => {
                Ok(Box::new(FiniteDifferences::new(self, y, sigma, 1e-3)?))
            }
            NoiseLevel::Given => {
                let denoised = self.denoise(y, sigma)?;
                let s = sigma.ok_or(DenoiseError::NeedsSigma("the Wiener filter"))?;
                let [_, _, h, w] = y.shape();
                let covariance = self.field.covariance(h, w);
                Ok(Box::new(WienerAt {
                    gain: covariance.wiener_gain(s as f64),
                    covariance,
                    denoised,
                }))
            }
        }
    }
}

/// The Wiener filter's Jacobian: diagonal in the covariance's eigenbasis.
struct WienerAt {
    gain: Vec<f64>,
    covariance: std::sync::Arc<crate::data::synthetic::Covariance>,
    denoised: Images,
}

impl JacobianAt for WienerAt {
    fn denoised(&self) -> &Images {
        &self.denoised
    }
    fn jvp(&self, vs: &Images) -> Images {
        check_vectors(vs, self.shape());
        let out = (0..vs.len())
            .flat_map(|k| self.covariance.filter(vs.image(k), &self.gain))
            .collect();
        Images::new(out, vs.shape())
    }
    fn vjp(&self, vs: &Images) -> Images {
        self.jvp(vs) // symmetric
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::Family;

    /// The homogeneous optimum is homogeneous (inside its range of scales) and, not knowing the
    /// field's amplitude, no better on average than the blind optimum, which is no better than
    /// the filter told σ.
    #[test]
    fn homogeneous_optimum_scales_with_its_input() {
        let field = GaussianField::default();
        let n = 12;
        let x = Family::Gaussian(field.clone()).generate(n, 300, 5).unwrap();
        let prior: Vec<(f64, f64)> = (0..60)
            .map(|j| 0.005 * 100f64.powf(j as f64 / 59.0))
            .map(|s| (s, 1.0))
            .collect();
        let homogeneous = Wiener::homogeneous_optimum(field.clone(), &prior);
        let blind = Wiener::blind_optimum(field.clone(), &prior);
        let y = crate::analysis::metrics::add_noise(&x.take(4), 0.1, 1);
        let f = homogeneous.denoise(&y, None).unwrap();
        let mut y2 = y.clone();
        y2.as_mut_slice().iter_mut().for_each(|v| *v *= 2.0);
        let f2 = homogeneous.denoise(&y2, None).unwrap();
        let err: f64 = f2
            .as_slice()
            .iter()
            .zip(f.as_slice())
            .map(|(a, b)| ((a - 2.0 * b) as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        let norm: f64 = f
            .as_slice()
            .iter()
            .map(|&v| (v as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(
            err < 1e-3 * 2.0 * norm,
            "‖f(2y) − 2f(y)‖ = {err}, ‖2f(y)‖ = {}",
            2.0 * norm
        );
        let b = blind.denoise(&y2, None).unwrap();
        let off: f64 = b
            .as_slice()
            .iter()
            .zip(f2.as_slice())
            .map(|(a, c)| ((a - c) as f64).abs())
            .sum();
        assert!(
            off > 1e-2,
            "the blind optimum knows the amplitude: it is not homogeneous"
        );
        // on average over the σ the prior spreads over (log-uniform on [0.005, 0.5])
        let (mut known, mut mb, mut mh) = (0.0, 0.0, 0.0);
        for (i, sigma) in [0.005f32, 0.02, 0.05, 0.1, 0.2, 0.5]
            .into_iter()
            .enumerate()
        {
            let y = crate::analysis::metrics::add_noise(&x, sigma, i as u64);
            let mse = |d: &Images| crate::analysis::metrics::mse(d.as_slice(), x.as_slice());
            known += mse(&Wiener::new(field.clone()).denoise(&y, Some(sigma)).unwrap());
            mb += mse(&blind.denoise(&y, None).unwrap());
            mh += mse(&homogeneous.denoise(&y, None).unwrap());
        }
        assert!(
            known < mb && mb < mh,
            "known σ {known:.4e}, blind {mb:.4e}, homogeneous {mh:.4e}"
        );
    }

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
