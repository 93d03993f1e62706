//! `tweedie jacobian`: open the denoiser at a noisy image. For each σ: the Jacobian J = ∂f/∂y
//! (dense by VJPs for small images, matrix-free Lanczos + Hutchinson for large ones), the
//! eigenvalues of its symmetric part (shrinkage factors), the top eigenvectors (the GAHB),
//! tr J (effective dimensionality), the asymmetry and homogeneity errors; optionally the overlap
//! of the top-k eigenvectors with those of a second network (principal angles).

use super::progress::Terminal;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;
use std::path::PathBuf;
use tweedie::analysis::jacobian::{matvec, JacobianProbe};
use tweedie::analysis::lanczos::{hutchinson, lanczos, TraceEstimate};
use tweedie::analysis::metrics::add_noise;
use tweedie::analysis::spectrum::{analyze, principal_cosines, project};
use tweedie::data::{load_image, FolderOptions, Images};
use tweedie::progress::Progress;
use tweedie::report::grid::{save_grid, Scaling};
use tweedie::report::plot::{save_line_plot, LinePlot, Scale, Series};
use tweedie::run::RunDir;
use tweedie::train::RunRecord;
use tweedie::DeviceSpec;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Dense for images up to 64×64 values, Lanczos beyond.
    Auto,
    /// Full J from D VJPs, then an exact eigendecomposition (faer).
    Dense,
    /// Top-k eigenpairs by Lanczos on (J + Jᵀ)/2, trace by Hutchinson.
    Lanczos,
}

#[derive(Args, Debug)]
pub struct JacobianArgs {
    /// Run folder (from `tweedie train`).
    #[arg(long)]
    run: PathBuf,
    /// The clean image: `test:K` or `train:K` (image K of the run's data), or an image file.
    #[arg(long, default_value = "test:0")]
    image: String,
    /// Noise levels, comma-separated (0.1 or 25/255).
    #[arg(long, default_value = "0.05,0.1,0.2,0.4")]
    sigmas: String,
    /// Number of top eigenvectors to show and compare.
    #[arg(long, default_value_t = 32)]
    top: usize,
    /// How to compute the spectrum.
    #[arg(long, value_enum, default_value_t = Method::Auto)]
    method: Method,
    /// Lanczos iterations [default: 2·top + 20].
    #[arg(long)]
    iterations: Option<usize>,
    /// Hutchinson probe vectors (Lanczos method).
    #[arg(long, default_value_t = 64)]
    probes: usize,
    /// A second run (e.g. the `b` network of a study) to compare eigenvectors with.
    #[arg(long)]
    compare_run: Option<PathBuf>,
    /// Seed of the noise and of the random vectors.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Device: auto, cpu, cuda[:N] or tch.
    #[arg(long, default_value = "auto")]
    device: DeviceSpec,
}

#[derive(Serialize)]
struct SigmaResult {
    sigma: f32,
    method: Method,
    /// Eigenvalues of (J + Jᵀ)/2, descending (all of them for dense, top-k for Lanczos).
    eigenvalues: Vec<f64>,
    /// Singular values (dense only).
    singular_values: Vec<f64>,
    /// tr J (exact for dense).
    trace: Option<f64>,
    /// Hutchinson estimate (Lanczos only).
    trace_estimate: Option<TraceEstimate>,
    /// ‖J − Jᵀ‖_F/‖J‖_F (dense only).
    asymmetry: Option<f64>,
    /// ‖J·y − f(y)‖/‖f(y)‖ (dense only).
    homogeneity_error: Option<f64>,
    /// PSNR of f(y) against the clean image.
    psnr: f64,
    /// Cosines of the principal angles with the second network's top-k eigenvectors.
    principal_cosines: Option<Vec<f64>>,
}

fn load_probe(run: &RunDir, device: &burn::tensor::Device) -> Result<(JacobianProbe, RunRecord)> {
    let (denoiser, record) = tweedie::train::load_denoiser(run, device)?;
    let net = denoiser.into_net();
    Ok((JacobianProbe::new(net, device), record))
}

fn clean_image(spec: &str, record: &RunRecord) -> Result<Images> {
    let shape = record.image_shape;
    if let Some((part, k)) = spec.split_once(':') {
        if let (Ok(k), "test" | "train") = (k.parse::<usize>(), part) {
            let data = record.config.data.resolve()?;
            let set = if part == "test" {
                &data.dataset.test
            } else {
                &data.train
            };
            if k >= set.len() {
                bail!("--image {spec}: the {part} set has {} images", set.len());
            }
            return Ok(set.select(&[k]));
        }
    }
    let img = load_image(
        std::path::Path::new(spec),
        FolderOptions {
            gray: shape[0] == 1,
            size: Some(shape[1]),
        },
    )?;
    Ok(img)
}

pub fn run(a: JacobianArgs) -> Result<()> {
    let sigmas = super::parse_sigmas(&a.sigmas)?;
    if sigmas.is_empty() || a.top == 0 {
        bail!("give at least one noise level in --sigmas and --top ≥ 1");
    }
    let device = a.device.device()?;
    let run = RunDir::new(&a.run);
    let (probe, record) = load_probe(&run, &device)?;
    let other = match &a.compare_run {
        Some(r) => Some(load_probe(&RunDir::new(r), &device)?.0),
        None => None,
    };
    let x = clean_image(&a.image, &record)?;
    let d = x.dim();
    let method = match a.method {
        Method::Auto if d <= 4096 => Method::Dense,
        Method::Auto => Method::Lanczos,
        m => m,
    };
    if method == Method::Dense && d > 16384 {
        bail!("a dense Jacobian of {d}×{d} is too large; use --method lanczos");
    }
    let top = a.top.min(d);
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let progress = Terminal::new();
    progress.start("jacobian", sigmas.len() as u64);
    let mut results = Vec::new();
    let mut panel = Vec::new();
    for (j, &sigma) in sigmas.iter().enumerate() {
        let y = add_noise(&x, sigma, a.seed.wrapping_add(j as u64));
        let f = probe.denoise(&y);
        let psnr = tweedie::analysis::metrics::psnr_from_mse(tweedie::analysis::metrics::mse(
            f.as_slice(),
            x.as_slice(),
        ));
        let top_vectors = |p: &JacobianProbe| -> Result<(Vec<f64>, Vec<Vec<f32>>, SigmaResult)> {
            Ok(match method {
                Method::Dense => {
                    let jac = p.full(&y, 256);
                    let spec = analyze(&jac, d, top)?;
                    let fy = p.denoise(&y);
                    let jy = matvec(&jac, y.as_slice());
                    let err = rel(&jy, fy.as_slice());
                    let r = SigmaResult {
                        sigma,
                        method,
                        eigenvalues: spec.eigenvalues.clone(),
                        singular_values: spec.singular_values.clone(),
                        trace: Some(spec.trace),
                        trace_estimate: None,
                        asymmetry: Some(spec.asymmetry),
                        homogeneity_error: Some(err),
                        psnr,
                        principal_cosines: None,
                    };
                    (spec.eigenvalues, spec.eigenvectors, r)
                }
                _ => {
                    let iters = a.iterations.unwrap_or(2 * top + 20);
                    let at = p.at(&y);
                    let pairs = lanczos(|v| at.symmetric_product(v), d, top, iters, a.seed);
                    let [_, c, h, w] = y.shape();
                    let est = hutchinson(
                        |vs| {
                            let out = at.vjp(&Images::new(vs.concat(), [vs.len(), c, h, w]));
                            (0..vs.len()).map(|i| out.image(i).to_vec()).collect()
                        },
                        d,
                        a.probes,
                        a.seed,
                    );
                    let r = SigmaResult {
                        sigma,
                        method,
                        eigenvalues: pairs.values.clone(),
                        singular_values: Vec::new(),
                        trace: None,
                        trace_estimate: Some(est),
                        asymmetry: None,
                        homogeneity_error: None,
                        psnr,
                        principal_cosines: None,
                    };
                    (pairs.values, pairs.vectors, r)
                }
            })
        };
        let (_, vectors, mut result) = top_vectors(&probe)?;
        if let Some(o) = &other {
            let (_, other_vectors, _) = top_vectors(o)?;
            result.principal_cosines =
                Some(principal_cosines(&vectors[..top], &other_vectors[..top])?);
        }
        let [c, h, w] = x.image_shape();
        let eig = Images::new(vectors[..top].concat(), [top, c, h, w]);
        save_grid(
            &eig,
            8,
            (64 / h).max(1),
            Scaling::Signed,
            &a.out.join(format!("eigenvectors_sigma{sigma:.3}.png")),
        )?;
        let proj = Images::new(project(&vectors[..top], y.as_slice()), [1, c, h, w]);
        panel.extend([x.clone(), y.clone(), f.clone(), proj]);
        progress.log(&format!(
            "σ = {sigma:.3}: PSNR {psnr:.2} dB, {}top eigenvalues {}",
            match (result.trace, result.trace_estimate) {
                (Some(t), _) => format!("tr J = {t:.1}, "),
                (_, Some(e)) => format!("tr J ≈ {:.1} ± {:.1}, ", e.mean, e.std_error),
                _ => String::new(),
            },
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
    write_figures(&a, &x, &panel, &results)?;
    tweedie::io::write_json(
        &a.out.join("jacobian.json"),
        &serde_json::json!({
            "run": a.run.display().to_string(),
            "compare_run": a.compare_run.as_ref().map(|p| p.display().to_string()),
            "image": a.image,
            "seed": a.seed,
            "top": top,
            "results": results,
        }),
    )?;
    for r in &results {
        let tr = r
            .trace
            .or(r.trace_estimate.map(|e| e.mean))
            .unwrap_or(f64::NAN);
        print!("σ = {:.3}: tr J = {tr:.1} of D = {d}", r.sigma);
        if let (Some(s), Some(h)) = (r.asymmetry, r.homogeneity_error) {
            print!(", asymmetry {s:.3}, ‖Jy − f(y)‖/‖f(y)‖ = {h:.1e}");
        }
        if let Some(c) = &r.principal_cosines {
            let mean_sq = c.iter().map(|v| v * v).sum::<f64>() / c.len() as f64;
            print!(", top-{top} subspace overlap (mean cos²) {mean_sq:.3}");
        }
        println!();
    }
    println!("wrote {}", a.out.display());
    Ok(())
}

fn rel(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den.max(1e-30)).sqrt()
}

fn write_figures(
    a: &JacobianArgs,
    x: &Images,
    panel: &[Images],
    results: &[SigmaResult],
) -> Result<()> {
    let spectra: Vec<Series> = results
        .iter()
        .map(|r| Series {
            label: format!("σ = {:.3}", r.sigma),
            points: r
                .eigenvalues
                .iter()
                .enumerate()
                .map(|(k, v)| ((k + 1) as f64, *v))
                .collect(),
        })
        .collect();
    save_line_plot(
        &LinePlot {
            title: "Eigenvalues of the Jacobian's symmetric part (shrinkage factors)".into(),
            x_label: "rank k".into(),
            y_label: "λₖ".into(),
            x_scale: Scale::Log,
            y_scale: Scale::Linear,
        },
        &spectra,
        &a.out.join("spectrum.png"),
    )?;
    let dims = Series {
        label: "tr J".into(),
        points: results
            .iter()
            .map(|r| {
                (
                    r.sigma as f64,
                    r.trace
                        .or(r.trace_estimate.map(|e| e.mean))
                        .unwrap_or(f64::NAN),
                )
            })
            .collect(),
    };
    save_line_plot(
        &LinePlot {
            title: format!("Effective dimensionality tr J (D = {})", x.dim()),
            x_label: "σ".into(),
            y_label: "tr J".into(),
            x_scale: Scale::Log,
            y_scale: Scale::Log,
        },
        &[dims],
        &a.out.join("effective_dim.png"),
    )?;
    let grid = Images::concat(panel);
    save_grid(
        &grid,
        4,
        (64 / x.shape()[2]).max(1),
        Scaling::Clamp,
        &a.out.join("panel.png"),
    )?;
    if results.iter().any(|r| r.principal_cosines.is_some()) {
        let series: Vec<Series> = results
            .iter()
            .filter_map(|r| {
                r.principal_cosines.as_ref().map(|c| Series {
                    label: format!("σ = {:.3}", r.sigma),
                    points: c
                        .iter()
                        .enumerate()
                        .map(|(k, v)| ((k + 1) as f64, *v))
                        .collect(),
                })
            })
            .collect();
        save_line_plot(
            &LinePlot {
                title: "Principal-angle cosines between the two networks' top eigenvectors".into(),
                x_label: "index".into(),
                y_label: "cos θ".into(),
                x_scale: Scale::Linear,
                y_scale: Scale::Linear,
            },
            &series,
            &a.out.join("subspace_overlap.png"),
        )?;
    }
    Ok(())
}
