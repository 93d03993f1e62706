//! Products with the denoiser's Jacobian J(y) = ∂f/∂y without forming it, and the full J for
//! small images, in eval mode with the weights fixed, so f is the fixed function that was
//! trained. vᵀJ comes from the network's exact adjoint at y's ReLU pattern (one forward pass
//! for any number of vectors; checked against reverse-mode autodiff in the tests).
//!
//! For a bias-free ReLU network f is piecewise linear and homogeneous, hence f(y) = J(y)·y
//! exactly (Kadkhodaie et al. 2024, §3); the tests check that identity.

use crate::data::Images;
use crate::denoise::{DenoiseError, Denoiser};
use crate::nn::{Linearized, Mode, Network};
use burn::module::Module;
use burn::tensor::Device;

/// A network prepared for Jacobian products: eval mode, weights fixed.
pub struct JacobianProbe {
    net: Network,
    device: Device,
}

impl JacobianProbe {
    /// Moves `net` to `device` (without autodiff: products with J use the network's exact
    /// adjoint at a frozen ReLU pattern, see [`Network::linearize`]).
    pub fn new(net: Network, device: &Device) -> Self {
        let device = device.clone().inner();
        Self {
            net: net.to_device(&device),
            device,
        }
    }

    /// f(y) for one image, in eval mode.
    pub fn denoise(&self, y: &Images) -> Images {
        let t = y.to_tensor(&self.device);
        Images::from_tensor(self.net.denoise(t, Mode::Eval))
    }

    /// The network linearized at `y` (one forward pass records the ReLU pattern), for any
    /// number of products with J(y).
    ///
    /// # Shapes
    /// `y`: `[1, c, h, w]`.
    pub fn at(&self, y: &Images) -> ProbeAt<'_> {
        assert_eq!(y.len(), 1, "a Jacobian is taken at one image");
        ProbeAt {
            probe: self,
            lin: self.net.linearize(y.to_tensor(&self.device)),
            shape: y.shape(),
        }
    }

    /// vₖᵀ J(y) for every vector vₖ of `vs` (see [`ProbeAt::vjp`]).
    ///
    /// # Shapes
    /// `y`: `[1, c, h, w]`; `vs`: `[k, c, h, w]` → `[k, c, h, w]`.
    pub fn vjp(&self, y: &Images, vs: &Images) -> Images {
        self.at(y).vjp(vs)
    }

    /// J(y)·vₖ for every vector vₖ of `vs` (see [`ProbeAt::jvp`]).
    ///
    /// # Shapes
    /// `y`: `[1, c, h, w]`; `vs`: `[k, c, h, w]` → `[k, c, h, w]`.
    pub fn jvp(&self, y: &Images, vs: &Images) -> Images {
        self.at(y).jvp(vs)
    }

    /// The full D×D Jacobian, row-major (row i is ∂fᵢ/∂y), built from D VJPs with the unit
    /// vectors, `chunk` at a time. Cost: one forward pass, then D/chunk adjoint passes; use
    /// for D up to a few thousand.
    pub fn full(&self, y: &Images, chunk: usize) -> Vec<f32> {
        let d = y.dim();
        let [_, c, h, w] = y.shape();
        let mut jac = Vec::with_capacity(d * d);
        let at = self.at(y);
        for start in (0..d).step_by(chunk.max(1)) {
            let end = (start + chunk.max(1)).min(d);
            let mut basis = Images::zeros([end - start, c, h, w]);
            for (r, i) in (start..end).enumerate() {
                basis.as_mut_slice()[r * d + i] = 1.0;
            }
            jac.extend(at.vjp(&basis).into_vec());
        }
        jac
    }
}

/// A [`JacobianProbe`] at one image: J(y) as a linear map, from one forward pass.
pub struct ProbeAt<'a> {
    probe: &'a JacobianProbe,
    lin: Linearized<'a>,
    shape: [usize; 4],
}

impl ProbeAt<'_> {
    fn tensor(&self, vs: &Images) -> burn::tensor::Tensor<4> {
        assert_eq!(
            vs.image_shape(),
            [self.shape[1], self.shape[2], self.shape[3]],
            "vectors must be image-shaped"
        );
        vs.to_tensor(&self.probe.device)
    }

    /// vₖᵀ J for every vₖ of `vs`: the adjoint of the frozen (linear) network on all of them
    /// at once. With f(y) = y − net(y), vᵀJ = v − vᵀ∂net/∂y.
    pub fn vjp(&self, vs: &Images) -> Images {
        let v = self.tensor(vs);
        Images::from_tensor(v.clone() - self.lin.vjp(v))
    }

    /// J·vₖ for every vₖ of `vs`: the frozen network's forward pass (exact; burn has no
    /// forward-mode autodiff, and finite differences are wrong wherever ±εv flips a ReLU).
    pub fn jvp(&self, vs: &Images) -> Images {
        let v = self.tensor(vs);
        Images::from_tensor(v.clone() - self.lin.jvp(v))
    }

    /// (J + Jᵀ)v / 2: the symmetric part, whose eigenvectors are the GAHB, applied to one vector.
    pub fn symmetric_product(&self, v: &[f32]) -> Vec<f32> {
        let vs = Images::new(v.to_vec(), self.shape);
        let (jv, vj) = (self.jvp(&vs), self.vjp(&vs));
        jv.as_slice()
            .iter()
            .zip(vj.as_slice())
            .map(|(a, b)| 0.5 * (a + b))
            .collect()
    }
}

/// The full Jacobian of any denoiser (a network or an oracle) at `y` by central differences
/// along the unit vectors, row-major. Exact for linear oracles such as the Wiener filter.
pub fn finite_difference(
    denoiser: &impl Denoiser,
    y: &Images,
    sigma: Option<f32>,
    eps: f32,
) -> Result<Vec<f32>, DenoiseError> {
    let d = y.dim();
    let [_, c, h, w] = y.shape();
    let mut cols = vec![0.0f32; d * d]; // column j at cols[j*d..]
    for start in (0..d).step_by(64) {
        let end = (start + 64).min(d);
        let n = end - start;
        let mut batch = Vec::with_capacity(2 * n * d);
        for sign in [1.0f32, -1.0] {
            for j in start..end {
                let mut v = y.as_slice().to_vec();
                v[j] += sign * eps;
                batch.extend(v);
            }
        }
        let f = denoiser.denoise(&Images::new(batch, [2 * n, c, h, w]), sigma)?;
        for (r, j) in (start..end).enumerate() {
            for (i, (a, b)) in f.image(r).iter().zip(f.image(n + r)).enumerate() {
                cols[j * d + i] = (a - b) / (2.0 * eps);
            }
        }
    }
    // transpose columns into rows
    Ok((0..d * d)
        .map(|idx| cols[(idx % d) * d + idx / d])
        .collect())
}

/// y ↦ J·y for a row-major D×D matrix.
pub fn matvec(jac: &[f32], y: &[f32]) -> Vec<f32> {
    let d = y.len();
    jac.chunks_exact(d)
        .map(|row| row.iter().zip(y).map(|(a, b)| (a * b) as f64).sum::<f64>() as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::lanczos::{hutchinson, lanczos};
    use crate::analysis::spectrum::{analyze, symmetric_eigen};
    use crate::data::synthetic::{Family, GaussianField};
    use crate::denoise::Wiener;
    use crate::fourier;
    use crate::nn::{Arch, NetConfig};
    use burn::tensor::Device;

    #[test]
    fn wiener_jacobian_has_fourier_eigenvectors_and_wiener_gains() {
        let (n, sigma) = (8, 0.1);
        let field = GaussianField::default();
        let y = Family::Gaussian(field.clone()).generate(n, 1, 2).unwrap();
        let jac = finite_difference(&Wiener::new(field.clone()), &y, Some(sigma), 1e-2).unwrap();
        let spec = analyze(&jac, n * n, n * n).unwrap();
        let mut gains = field.wiener_gain(n, n, sigma as f64);
        gains.sort_by(|a, b| b.total_cmp(a));
        for (k, (l, g)) in spec.eigenvalues.iter().zip(&gains).enumerate() {
            assert!((l - g).abs() < 1e-3, "eigenvalue {k}: {l} vs gain {g}");
        }
        assert!(spec.asymmetry < 1e-3);
        // each eigenvector lives in the Fourier modes whose gain is its eigenvalue
        let gain = field.wiener_gain(n, n, sigma as f64);
        for (k, u) in spec.eigenvectors.iter().enumerate() {
            let power = fourier::power(u, n, n);
            let total: f64 = power.iter().sum();
            let inside: f64 = power
                .iter()
                .zip(&gain)
                .filter(|(_, g)| (*g - spec.eigenvalues[k]).abs() < 1e-3)
                .map(|(p, _)| p)
                .sum();
            assert!(
                inside > 0.99 * total,
                "eigenvector {k}: {inside} of {total} in its eigenspace"
            );
        }
    }

    fn probe(size: usize) -> (JacobianProbe, Images) {
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
        (JacobianProbe::new(net, &Device::flex()), y)
    }

    #[test]
    fn lanczos_and_hutchinson_match_the_dense_jacobian_at_32x32() {
        let (p, y) = probe(32);
        let d = y.dim();
        let jac = p.full(&y, 128);
        let (dense, _) = symmetric_eigen(&jac, d).unwrap();
        let at = p.at(&y);
        let top = lanczos(|v| at.symmetric_product(v), d, 4, 60, 1);
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
        let est = hutchinson(
            |vs| {
                let batch = Images::new(vs.concat(), [vs.len(), 1, 32, 32]);
                let out = at.vjp(&batch);
                (0..vs.len()).map(|i| out.image(i).to_vec()).collect()
            },
            d,
            64,
            2,
        );
        // 3 standard errors, plus float rounding of a sum of D products
        assert!(
            (est.mean - exact).abs() < 3.0 * est.std_error + 1e-6 * d as f64,
            "Hutchinson {} ± {} vs tr J = {exact}",
            est.mean,
            est.std_error
        );
    }

    #[test]
    fn jvp_matches_the_vjp_jacobian() {
        let (p, y) = probe(8);
        let jac = p.full(&y, 64);
        let vs = crate::analysis::metrics::add_noise(&Images::zeros([2, 1, 8, 8]), 1.0, 4);
        let jv = p.jvp(&y, &vs);
        for k in 0..2 {
            let want = matvec(&jac, vs.image(k));
            let err: f32 = want
                .iter()
                .zip(jv.image(k))
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f32>()
                .sqrt();
            let norm: f32 = want.iter().map(|a| a * a).sum::<f32>().sqrt();
            assert!(err < 1e-4 * norm, "JVP {k}: error {err} of {norm}");
        }
    }
}
