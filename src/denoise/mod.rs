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

mod learned;
pub mod oracles;
pub mod shrinkage;

pub use learned::Learned;
pub use oracles::{disks, DiskOracle, EmpiricalOptimal, NoiseLevel, Wiener};
pub use shrinkage::DctShrinkage;

use crate::data::Images;
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
