//! Products with the denoiser's Jacobian J(y) = ∂f/∂y without forming it, and the full J for
//! small images, by reverse-mode autodiff (burn): vᵀJ = ∇_y ⟨f(y), v⟩ with the weights frozen and
//! the network in eval mode, so f is the fixed function that was trained.
//!
//! For a bias-free ReLU network f is piecewise linear and homogeneous, hence f(y) = J(y)·y
//! exactly (Kadkhodaie et al. 2024, §3); the tests check that identity.

use crate::data::Images;
use crate::nn::{Mode, Network};
use burn::module::Module;
use burn::tensor::{Device, Tensor};

/// A network prepared for Jacobian products: on an autodiff device, weights frozen.
pub struct JacobianProbe {
    net: Network,
    device: Device,
}

impl JacobianProbe {
    /// Moves `net` to the autodiff version of `device` and freezes its weights.
    pub fn new(net: Network, device: &Device) -> Self {
        let device = device.clone().autodiff();
        Self {
            net: net.to_device(&device).no_grad(),
            device,
        }
    }

    /// f(y) for one image, in eval mode.
    pub fn denoise(&self, y: &Images) -> Images {
        let t = y.to_tensor(&self.device);
        Images::from_tensor(self.net.denoise(t, Mode::Eval).detach())
    }

    /// vₖᵀ J(y) for every vector vₖ of `vs`, in one batched backward pass over copies of y
    /// (exact: in eval mode images of a batch do not interact).
    ///
    /// # Shapes
    /// `y`: `[1, c, h, w]`; `vs`: `[k, c, h, w]` → `[k, c, h, w]`.
    pub fn vjp(&self, y: &Images, vs: &Images) -> Images {
        assert_eq!(y.len(), 1, "vjp takes one image");
        assert_eq!(
            y.image_shape(),
            vs.image_shape(),
            "vectors must be image-shaped"
        );
        let k = vs.len();
        let y_rep: Tensor<4> = y.to_tensor(&self.device).repeat_dim(0, k).require_grad();
        let v = vs.to_tensor(&self.device);
        let f = self.net.denoise(y_rep.clone(), Mode::Eval);
        let grads = (f * v).sum().backward();
        let g = y_rep.grad(&grads).expect("y requires grad");
        Images::from_tensor(g)
    }

    /// The full D×D Jacobian, row-major (row i is ∂fᵢ/∂y), built from D VJPs with the unit
    /// vectors, `chunk` at a time. Cost: D/chunk backward passes; use for D up to a few thousand.
    pub fn full(&self, y: &Images, chunk: usize) -> Vec<f32> {
        let d = y.dim();
        let [_, c, h, w] = y.shape();
        let mut jac = Vec::with_capacity(d * d);
        for start in (0..d).step_by(chunk.max(1)) {
            let end = (start + chunk.max(1)).min(d);
            let mut basis = Images::zeros([end - start, c, h, w]);
            for (r, i) in (start..end).enumerate() {
                basis.as_mut_slice()[r * d + i] = 1.0;
            }
            jac.extend(self.vjp(y, &basis).into_vec());
        }
        jac
    }
}

/// y ↦ J·y for a row-major D×D matrix.
pub fn matvec(jac: &[f32], y: &[f32]) -> Vec<f32> {
    let d = y.len();
    jac.chunks_exact(d)
        .map(|row| row.iter().zip(y).map(|(a, b)| (a * b) as f64).sum::<f64>() as f32)
        .collect()
}
