//! Opening a denoiser at a noisy image (Kadkhodaie et al. 2024, §3): for each σ, y = x + σz
//! and the Jacobian J(y) = ∂f/∂y — the eigenvalues of its symmetric part (shrinkage factors),
//! the top eigenvectors (the geometry-adaptive harmonic basis), tr J (the effective
//! dimensionality), its asymmetry and the homogeneity error ‖J·y − f(y)‖/‖f(y)‖; optionally the
//! overlap of the top eigenvectors with those of a second denoiser (principal angles).
//!
//! Any [`Linearize`] denoiser works: a network exactly (frozen ReLU pattern), the Wiener filter
//! in closed form, other oracles by central differences. The folder gets `jacobian.json` (the
//! [`Record`]) and, per σ, the top eigenvectors and the panel images as `.npy`, from which
//! `report::jacobian` draws the figures.

use super::dir::{Experiment, ExperimentDir, FolderError};
use crate::analysis::jacobian::{full, homogeneity_error, symmetric_product, vjp_flat};
use crate::analysis::lanczos::{hutchinson, lanczos, TraceEstimate};
use crate::analysis::metrics::{mse, noisy, psnr_from_mse};
use crate::analysis::spectrum::{analyze, principal_cosines, project, SpectrumError};
use crate::config::{check, InvalidField};
use crate::data::{write_npy, Images};
use crate::denoise::{DenoiseError, Linearize};
use crate::progress::Progress;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Largest D for which [`Method::Auto`] builds the dense Jacobian (64×64 gray): D adjoint
/// products and an O(D³) f64 eigendecomposition take seconds to a minute on a laptop CPU
/// (a 40×40 Jacobian of the 7.6 M-parameter network: 15 s; docs/results/speed.md).
pub const AUTO_DENSE_MAX: usize = 4096;

/// Largest D for which a dense Jacobian is attempted at all (128×128 gray): the matrix is D²
/// f32 (1 GiB) plus faer's f64 copies (several GiB), and the eigendecomposition takes hours.
pub const DENSE_MAX: usize = 16384;

/// Unit vectors per adjoint pass when building a dense Jacobian: one batch of 256 images of
/// activations, large enough that the network's GEMMs run at full width.
pub const CHUNK: usize = 256;

/// How the spectrum is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Dense up to 4096 values (64×64 gray, `AUTO_DENSE_MAX`), Lanczos beyond.
    Auto,
    /// Full J from D VJPs, then an exact eigendecomposition (faer).
    Dense,
    /// Top-k eigenpairs by Lanczos on (J + Jᵀ)/2, trace by Hutchinson. From one start vector
    /// it finds one eigenvector per repeated eigenvalue: exact for a network's (generically
    /// distinct) spectrum, but an oracle with symmetric multiplicities (the Wiener filter's
    /// frequency pairs) shows each repeated value once.
    Lanczos,
}

impl Method {
    /// The method used for images of `d` values.
    pub fn resolve(self, d: usize) -> Method {
        match self {
            Method::Auto if d <= AUTO_DENSE_MAX => Method::Dense,
            Method::Auto => Method::Lanczos,
            m => m,
        }
    }
}

/// Memory of a dense D×D Jacobian and its decomposition: the f32 matrix, and faer's f64
/// symmetric part, eigenvectors and workspace (about three D×D f64 matrices).
pub fn dense_bytes(d: usize) -> u64 {
    let dd = (d as u64) * (d as u64);
    dd * 4 + 3 * dd * 8
}

/// The configuration of one Jacobian experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Noise levels.
    pub sigmas: Vec<f32>,
    /// Top eigenvectors kept and compared.
    pub top: usize,
    /// How the spectrum is computed.
    pub method: Method,
    /// Lanczos iterations (`None`: 2·top + 20).
    pub iterations: Option<usize>,
    /// Hutchinson probe vectors (Lanczos).
    pub probes: usize,
    /// Seed of the noise (named by σ) and of the random vectors.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            sigmas: vec![0.05, 0.1, 0.2, 0.4],
            top: 32,
            method: Method::Auto,
            iterations: None,
            probes: 64,
            seed: 0,
        }
    }
}

impl Config {
    /// Checks the settings (before the denoiser or the image are loaded).
    pub fn validate(&self) -> Result<(), InvalidField> {
        check(
            !self.sigmas.is_empty() && self.sigmas.iter().all(|s| *s > 0.0 && s.is_finite()),
            "sigmas",
            format!("{:?}", self.sigmas),
            "must list positive noise levels",
        )?;
        check(self.top > 0, "top", self.top, "must be ≥ 1")?;
        if let Some(iterations) = self.iterations {
            check(
                iterations >= self.top,
                "iterations",
                iterations,
                format!("must be at least top = {}", self.top),
            )?;
        }
        check(self.probes >= 2, "probes", self.probes, "must be ≥ 2")
    }

    /// Checks that the method suits images of `d` values on this machine.
    pub fn validate_for(&self, d: usize) -> Result<(), InvalidField> {
        self.validate_with_memory(d, crate::resources::available_memory())
    }

    /// [`Self::validate_for`] with the memory available (`None`: unknown, not checked).
    pub fn validate_with_memory(
        &self,
        d: usize,
        available: Option<u64>,
    ) -> Result<(), InvalidField> {
        self.validate()?;
        let dense = self.method.resolve(d) == Method::Dense;
        check(
            !dense || d <= DENSE_MAX,
            "method",
            "dense",
            format!("a dense {d}×{d} Jacobian is too large (D ≤ {DENSE_MAX}); use lanczos"),
        )?;
        let need = dense_bytes(d);
        check(
            !dense || available.is_none_or(|a| need <= a),
            "method",
            "dense",
            format!(
                "a dense {d}×{d} Jacobian needs about {} and {} is available; use lanczos",
                crate::resources::gib(need),
                crate::resources::gib(available.unwrap_or(0))
            ),
        )
    }
}

/// What was measured at one σ.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SigmaResult {
    /// Noise level.
    pub sigma: f32,
    /// The method used.
    pub method: Method,
    /// Eigenvalues of (J + Jᵀ)/2, descending (all of them for dense, top-k for Lanczos).
    pub eigenvalues: Vec<f64>,
    /// Singular values (dense only).
    pub singular_values: Vec<f64>,
    /// tr J (exact for dense).
    pub trace: Option<f64>,
    /// Hutchinson estimate (Lanczos only).
    pub trace_estimate: Option<TraceEstimate>,
    /// ‖J − Jᵀ‖_F/‖J‖_F (dense only).
    pub asymmetry: Option<f64>,
    /// ‖J·y − f(y)‖/‖f(y)‖ (dense only): zero for a bias-free network.
    pub homogeneity_error: Option<f64>,
    /// PSNR of f(y) against the clean image.
    pub psnr: f64,
    /// Cosines of the principal angles with the second denoiser's top-k eigenvectors.
    pub principal_cosines: Option<Vec<f64>>,
}

impl SigmaResult {
    /// tr J, exact or estimated.
    pub fn effective_dimension(&self) -> f64 {
        self.trace
            .or(self.trace_estimate.map(|e| e.mean))
            .unwrap_or(f64::NAN)
    }
}

/// `jacobian.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// The configuration.
    pub config: Config,
    /// The denoiser analysed (a run folder or an oracle's name).
    pub denoiser: String,
    /// The second denoiser, if eigenvectors were compared.
    pub compare: Option<String>,
    /// The clean image (`test:17`, a file, …).
    pub image: String,
    /// Image shape (C, H, W).
    pub image_shape: [usize; 3],
    /// Eigenvectors kept per σ (top, at most D).
    pub top: usize,
    /// One entry per σ, in the configuration's order.
    pub results: Vec<SigmaResult>,
}

/// The Jacobian analysis as an [`Experiment`]: its folder holds `jacobian.json`, the
/// eigenvectors, the panel, figures and `report.html`. It runs on a denoiser and an image given
/// as a [`Subject`] (a network, an oracle, two to compare), so [`run`] takes them beside the
/// configuration.
pub struct Jacobian;

impl Experiment for Jacobian {
    const NAME: &'static str = "Jacobian analysis";
    const RECORD_FILE: &'static str = "jacobian.json";
    type Config = Config;
    type Record = Record;
}

/// A Jacobian folder.
pub type JacobianDir = ExperimentDir<Jacobian>;

impl JacobianDir {
    /// The top eigenvectors at the `j`-th σ, `[top, c, h, w]`.
    pub fn eigenvectors(&self, j: usize) -> PathBuf {
        self.root().join(format!("eigenvectors_{j}.npy"))
    }
    /// Clean, noisy, f(y) and y's projection onto the top eigenvectors, four images per σ.
    pub fn panel(&self) -> PathBuf {
        self.root().join("panel.npy")
    }
}

/// Errors of the Jacobian experiment.
#[derive(Debug, thiserror::Error)]
pub enum JacobianError {
    /// A bad setting.
    #[error("invalid Jacobian setting")]
    Invalid(#[from] InvalidField),
    /// The denoiser failed.
    #[error(transparent)]
    Denoise(#[from] DenoiseError),
    /// A decomposition failed.
    #[error(transparent)]
    Spectrum(#[from] SpectrumError),
    /// Writing the folder.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Writing the record.
    #[error(transparent)]
    Folder(#[from] FolderError),
}

/// The inputs: the denoiser, an optional second one, and the clean image with its name.
pub struct Subject<'a> {
    /// The denoiser analysed and its name.
    pub denoiser: (&'a dyn Linearize, String),
    /// A second denoiser to compare eigenvectors with, and its name.
    pub compare: Option<(&'a dyn Linearize, String)>,
    /// The clean image `[1, c, h, w]` and its name.
    pub image: (Images, String),
}

/// The top eigenpairs and, for dense, the rest of the spectrum at y.
fn spectrum_at(
    denoiser: &dyn Linearize,
    y: &Images,
    sigma: f32,
    cfg: &Config,
    top: usize,
) -> Result<(SigmaResult, Vec<Vec<f32>>, Images), JacobianError> {
    let d = y.dim();
    let method = cfg.method.resolve(d);
    let at = denoiser.linearize(y, Some(sigma))?;
    let blank = SigmaResult {
        sigma,
        method,
        eigenvalues: Vec::new(),
        singular_values: Vec::new(),
        trace: None,
        trace_estimate: None,
        asymmetry: None,
        homogeneity_error: None,
        psnr: f64::NAN,
        principal_cosines: None,
    };
    let (result, vectors) = match method {
        Method::Dense => {
            let jac = full(&*at, CHUNK);
            let spec = analyze(&jac, d, top)?;
            let result = SigmaResult {
                singular_values: spec.singular_values,
                trace: Some(spec.trace),
                asymmetry: Some(spec.asymmetry),
                homogeneity_error: Some(homogeneity_error(&jac, y, at.denoised())),
                eigenvalues: spec.eigenvalues,
                ..blank
            };
            (result, spec.eigenvectors)
        }
        Method::Lanczos | Method::Auto => {
            let iterations = cfg.iterations.unwrap_or(2 * top + 20);
            let pairs = lanczos(|v| symmetric_product(&*at, v), d, top, iterations, cfg.seed);
            let estimate = hutchinson(|vs| vjp_flat(&*at, vs), d, cfg.probes, cfg.seed);
            let result = SigmaResult {
                eigenvalues: pairs.values,
                trace_estimate: Some(estimate),
                ..blank
            };
            (result, pairs.vectors)
        }
    };
    Ok((result, vectors, at.denoised().clone()))
}

/// Runs the experiment and writes its folder (record and arrays).
pub fn run(
    cfg: &Config,
    subject: &Subject<'_>,
    dir: &JacobianDir,
    progress: &dyn Progress,
) -> Result<Record, JacobianError> {
    let x = &subject.image.0;
    let d = x.dim();
    cfg.validate_for(d)?;
    let top = cfg.top.min(d);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| JacobianError::Io { path, source }
    };
    std::fs::create_dir_all(dir.root()).map_err(io(dir.root()))?;
    let [_, c, h, w] = x.shape();
    progress.start("jacobian", cfg.sigmas.len() as u64);
    let mut results = Vec::new();
    let mut panel = Vec::new();
    for (j, &sigma) in cfg.sigmas.iter().enumerate() {
        let y = noisy(x, sigma, cfg.seed);
        let (mut result, vectors, f) = spectrum_at(subject.denoiser.0, &y, sigma, cfg, top)?;
        result.psnr = psnr_from_mse(mse(f.as_slice(), x.as_slice()));
        if let Some((other, _)) = &subject.compare {
            let (_, theirs, _) = spectrum_at(*other, &y, sigma, cfg, top)?;
            result.principal_cosines = Some(principal_cosines(&vectors[..top], &theirs[..top])?);
        }
        let eig = Images::new(vectors[..top].concat(), [top, c, h, w]);
        let path = dir.eigenvectors(j);
        write_npy(&eig, &path).map_err(io(&path))?;
        let proj = Images::new(project(&vectors[..top], y.as_slice()), [1, c, h, w]);
        panel.extend([x.clone(), y, f, proj]);
        progress.log(&format!(
            "σ = {sigma:.3}: PSNR {:.2} dB, tr J = {:.1}, top eigenvalues {}",
            result.psnr,
            result.effective_dimension(),
            result
                .eigenvalues
                .iter()
                .take(4)
                .map(|v| format!("{v:.3}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
        results.push(result);
        progress.update(j as u64 + 1, "");
    }
    progress.finish();
    let path = dir.panel();
    write_npy(&Images::concat(&panel), &path).map_err(io(&path))?;
    let record = Record {
        config: cfg.clone(),
        denoiser: subject.denoiser.1.clone(),
        compare: subject.compare.as_ref().map(|(_, name)| name.clone()),
        image: subject.image.1.clone(),
        image_shape: [c, h, w],
        top,
        results,
    };
    dir.write_record(&record)?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::{Family, GaussianField};
    use crate::denoise::Wiener;
    use crate::progress::Silent;

    /// The experiment opens an oracle through the same trait as a network: the Wiener
    /// filter's Jacobian has the Wiener gains p(f)/(p(f) + σ²) as eigenvalues, is symmetric,
    /// and dense and Lanczos agree on the top of the spectrum.
    #[test]
    fn wiener_eigenvalues_are_the_wiener_gains() {
        let n = 8;
        let field = GaussianField::default();
        let x = Family::Gaussian(field.clone()).generate(n, 1, 4).unwrap();
        let wiener = Wiener::new(field.clone());
        let tmp = tempfile::tempdir().unwrap();
        let subject = Subject {
            denoiser: (&wiener, "wiener".into()),
            compare: Some((&wiener, "wiener".into())),
            image: (x, "field".into()),
        };
        let cfg = |method| Config {
            sigmas: vec![0.05, 0.2],
            top: 8,
            method,
            ..Config::default()
        };
        let dense = run(
            &cfg(Method::Auto),
            &subject,
            &JacobianDir::new(tmp.path().join("d")),
            &Silent,
        )
        .unwrap();
        let lanczos = run(
            &cfg(Method::Lanczos),
            &subject,
            &JacobianDir::new(tmp.path().join("l")),
            &Silent,
        )
        .unwrap();
        for (r, l) in dense.results.iter().zip(&lanczos.results) {
            assert_eq!(r.method, Method::Dense);
            let mut gains = field.wiener_gain(n, n, r.sigma as f64);
            gains.sort_by(|a, b| b.total_cmp(a));
            assert_eq!(r.eigenvalues.len(), n * n);
            for (k, (e, g)) in r.eigenvalues.iter().zip(&gains).enumerate() {
                assert!(
                    (e - g).abs() < 1e-4,
                    "σ = {}: λ{k} = {e}, gain {g}",
                    r.sigma
                );
            }
            assert!(r.asymmetry.unwrap() < 1e-5);
            let tr: f64 = gains.iter().sum();
            assert!((r.trace.unwrap() - tr).abs() < 1e-3 * tr);
            // Lanczos from one start vector finds one vector per repeated eigenvalue (the
            // Wiener gains come in symmetric frequency pairs), so its values are gains, not
            // the first k gains with multiplicity
            assert!((l.eigenvalues[0] - gains[0]).abs() < 1e-4);
            for (k, e) in l.eigenvalues.iter().enumerate() {
                let nearest = gains
                    .iter()
                    .map(|g| (e - g).abs())
                    .fold(f64::INFINITY, f64::min);
                assert!(nearest < 1e-3, "Lanczos λ{k} = {e} is no gain");
            }
            // the same denoiser twice: its top eigenvectors span the same space, unless the
            // k-th and (k+1)-th gains tie (Fourier modes come in ± frequency pairs)
            let cos = r.principal_cosines.as_ref().unwrap();
            if (gains[7] - gains[8]).abs() > 1e-6 {
                assert!(cos.iter().all(|c| *c > 0.999), "{cos:?}");
            }
        }
        let dir = JacobianDir::new(tmp.path().join("d"));
        assert!(dir.record().exists() && dir.panel().exists() && dir.eigenvectors(1).exists());
    }

    #[test]
    fn bad_settings_are_refused_by_field() {
        let bad = Config {
            sigmas: vec![-0.1],
            ..Config::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "sigmas");
        let huge = Config {
            method: Method::Dense,
            ..Config::default()
        };
        assert_eq!(
            huge.validate_for(DENSE_MAX + 1).unwrap_err().field,
            "method"
        );
        assert!(
            Config::default().validate_for(DENSE_MAX + 1).is_ok(),
            "auto picks Lanczos"
        );
        // a dense Jacobian the machine cannot hold is refused with the estimate
        let dense = Config {
            method: Method::Dense,
            ..Config::default()
        };
        let err = dense
            .validate_with_memory(4096, Some(dense_bytes(4096) / 2))
            .unwrap_err();
        assert!(err.expected.contains("needs about") && err.expected.contains("lanczos"));
        assert!(dense
            .validate_with_memory(4096, Some(dense_bytes(4096)))
            .is_ok());
        assert!(dense.validate_with_memory(4096, None).is_ok());
    }
}
