//! The page of a Jacobian folder: the spectra, tr J vs σ, the top eigenvectors (the GAHB) per σ,
//! the panel of clean / noisy / denoised / projected images and, when two denoisers were
//! compared, the principal-angle cosines — drawn from `jacobian.json` and the arrays beside it.

use super::grid::{save_grid, Scaling};
use super::html::Html;
use super::plot::{save_line_plot, LinePlot, Scale, Series};
use super::ReportError;
use crate::data::load_npy;
use crate::experiments::jacobian::{JacobianDir, Record};

fn invalid(e: impl std::fmt::Display) -> ReportError {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()).into()
}

fn indexed(values: &[f64]) -> Vec<(f64, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(k, v)| ((k + 1) as f64, *v))
        .collect()
}

/// Writes the figures and `report.html` of a Jacobian folder.
pub fn write(dir: &JacobianDir, record: &Record) -> Result<(), ReportError> {
    let out = dir.root();
    let [_, h, _] = record.image_shape;
    let zoom = (64 / h).max(1);
    let spectra: Vec<Series> = record
        .results
        .iter()
        .map(|r| Series {
            label: format!("σ = {:.3}", r.sigma),
            points: indexed(&r.eigenvalues),
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
        &out.join("spectrum.png"),
    )?;
    let d: usize = record.image_shape.iter().product();
    save_line_plot(
        &LinePlot {
            title: format!("Effective dimensionality tr J (D = {d})"),
            x_label: "σ".into(),
            y_label: "tr J".into(),
            x_scale: Scale::Log,
            y_scale: Scale::Log,
        },
        &[Series {
            label: "tr J".into(),
            points: record
                .results
                .iter()
                .map(|r| (r.sigma as f64, r.effective_dimension()))
                .collect(),
        }],
        &out.join("effective_dim.png"),
    )?;
    for (j, r) in record.results.iter().enumerate() {
        let eig = load_npy(&dir.eigenvectors(j)).map_err(invalid)?;
        save_grid(
            &eig,
            8,
            zoom,
            Scaling::Signed,
            &out.join(format!("eigenvectors_sigma{:.3}.png", r.sigma)),
        )?;
    }
    let panel = load_npy(&dir.panel()).map_err(invalid)?;
    save_grid(&panel, 4, zoom, Scaling::Clamp, &out.join("panel.png"))?;
    let compared: Vec<Series> = record
        .results
        .iter()
        .filter_map(|r| {
            r.principal_cosines.as_ref().map(|c| Series {
                label: format!("σ = {:.3}", r.sigma),
                points: indexed(c),
            })
        })
        .collect();
    if !compared.is_empty() {
        save_line_plot(
            &LinePlot {
                title: "Principal-angle cosines between the two denoisers' top eigenvectors".into(),
                x_label: "index".into(),
                y_label: "cos θ".into(),
                x_scale: Scale::Linear,
                y_scale: Scale::Linear,
            },
            &compared,
            &out.join("subspace_overlap.png"),
        )?;
    }
    page(dir, record, !compared.is_empty())
}

fn page(dir: &JacobianDir, record: &Record, compared: bool) -> Result<(), ReportError> {
    let mut html = Html::new(&format!("Jacobian of {}", record.denoiser));
    html.paragraph(&format!(
        "Image {} ({}×{}×{}), noise seed {}; {} top eigenvectors per σ.",
        record.image,
        record.image_shape[0],
        record.image_shape[1],
        record.image_shape[2],
        record.config.seed,
        record.top
    ));
    let rows: Vec<Vec<String>> = record
        .results
        .iter()
        .map(|r| {
            let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map(f).unwrap_or_default();
            vec![
                format!("{:.3}", r.sigma),
                format!("{:?}", r.method).to_lowercase(),
                format!("{:.2}", r.psnr),
                format!("{:.1}", r.effective_dimension()),
                opt(r.asymmetry, &|v| format!("{v:.3}")),
                opt(r.homogeneity_error, &|v| format!("{v:.1e}")),
            ]
        })
        .collect();
    html.table(
        &[
            "σ",
            "method",
            "PSNR of f(y) (dB)",
            "tr J",
            "asymmetry",
            "‖Jy − f(y)‖/‖f(y)‖",
        ],
        &rows,
    );
    html.figure("spectrum.png", "eigenvalues of (J + Jᵀ)/2, descending")
        .figure("effective_dim.png", "effective dimensionality tr J vs σ")
        .figure(
            "panel.png",
            "rows per σ: clean, noisy y, f(y), projection of y onto the top eigenvectors",
        );
    for r in &record.results {
        html.figure(
            &format!("eigenvectors_sigma{:.3}.png", r.sigma),
            &format!("top eigenvectors at σ = {:.3}", r.sigma),
        );
    }
    if compared {
        html.figure(
            "subspace_overlap.png",
            &format!(
                "principal-angle cosines with the top eigenvectors of {}",
                record.compare.as_deref().unwrap_or("the second denoiser")
            ),
        );
    }
    html.save(&dir.root().join("report.html"))?;
    Ok(())
}
