//! The page of a generalization study: similarity vs N, its histogram, train/test PSNR, model
//! variance, and the paired samples with their nearest training images, drawn from `study.json`
//! and the arrays in `samples/` alone.

use super::grid::{save_grid, Scaling};
use super::html::Html;
use super::plot::{save_line_plot, LinePlot, Scale, Series};
use super::ReportError;
use crate::data::{load_npy, Images, Split};
use crate::experiments::generalization::{Record, RunKey, SizeMetrics, StudyDir};

/// Reads `study.json`.
pub fn read(study: &StudyDir) -> Result<Record, ReportError> {
    let text = std::fs::read_to_string(study.record())?;
    serde_json::from_str(&text).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", study.record().display()),
        )
        .into()
    })
}

/// Rows of (sample a, nearest in S₁, sample b, nearest in S₂) for the first few samples of one
/// N, from the arrays the study keeps in `samples/`.
fn pair_figure(study: &StudyDir, n: usize) -> Result<(), ReportError> {
    let (ka, kb) = (RunKey { n, split: Split::A }, RunKey { n, split: Split::B });
    let load = |p: std::path::PathBuf| {
        load_npy(&p)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
    };
    let (sa, sb) = (load(study.samples(ka))?, load(study.samples(kb))?);
    let (na, nb) = (
        load(study.nearest_images(ka))?,
        load(study.nearest_images(kb))?,
    );
    let show = sa.len().min(sb.len()).min(na.len()).min(nb.len()).min(6);
    let mut tiles = Vec::new();
    for k in 0..show {
        for set in [&sa, &na, &sb, &nb] {
            tiles.push(set.select(&[k]));
        }
    }
    let zoom = (56 / sa.shape()[2]).max(1);
    save_grid(
        &Images::concat(&tiles),
        4,
        zoom,
        Scaling::Clamp,
        &study.figures().join(format!("pairs_N{n}.png")),
    )?;
    Ok(())
}

/// Writes `figures/` and `report.html` of a study from its record (`study.json`) and the
/// sample arrays beside it; nothing is recomputed.
pub fn write(study: &StudyDir, report: &Record) -> Result<(), ReportError> {
    let dir = study.figures();
    std::fs::create_dir_all(&dir)?;
    for s in &report.sizes {
        pair_figure(study, s.n)?;
    }
    let ns = |f: &dyn Fn(&SizeMetrics) -> f64| -> Vec<(f64, f64)> {
        report.sizes.iter().map(|s| (s.n as f64, f(s))).collect()
    };
    save_line_plot(
        &LinePlot {
            title: "Memorization → generalization".into(),
            x_label: "training-set size N".into(),
            y_label: "median correlation".into(),
            x_scale: Scale::Log,
            y_scale: Scale::Linear,
        },
        &[
            Series {
                label: "network a vs b (paired samples)".into(),
                points: ns(&|s| s.network.median_paired_similarity as f64),
            },
            Series {
                label: "network sample vs nearest training image".into(),
                points: ns(&|s| s.network.nearest_a.median_own_similarity as f64),
            },
            Series {
                label: "empirical-optimal a vs b".into(),
                points: ns(&|s| s.empirical_optimal.median_paired_similarity as f64),
            },
            Series {
                label: "empirical-optimal sample vs nearest training image".into(),
                points: ns(&|s| s.empirical_optimal.nearest_a.median_own_similarity as f64),
            },
        ],
        &dir.join("similarity_vs_n.png"),
    )?;
    let sigmas = &report.config.eval_sigmas;
    let mv: Vec<Series> = sigmas
        .iter()
        .enumerate()
        .map(|(j, s)| Series {
            label: format!("σ = {s:.3}"),
            points: ns(&|m| m.network.model_variance[j]),
        })
        .collect();
    save_line_plot(
        &LinePlot {
            title: "Model variance E‖f_a(y) − f_b(y)‖²/D on held-out images".into(),
            x_label: "training-set size N".into(),
            y_label: "per-pixel variance".into(),
            x_scale: Scale::Log,
            y_scale: Scale::Log,
        },
        &mv,
        &dir.join("model_variance.png"),
    )?;
    let psnr: Vec<Series> = report
        .sizes
        .iter()
        .flat_map(|s| {
            [
                Series {
                    label: format!("N = {} train", s.n),
                    points: s
                        .network
                        .train_psnr_a
                        .iter()
                        .map(|r| (r.sigma as f64, r.psnr))
                        .collect(),
                },
                Series {
                    label: format!("N = {} test", s.n),
                    points: s
                        .network
                        .test_psnr_a
                        .iter()
                        .map(|r| (r.sigma as f64, r.psnr))
                        .collect(),
                },
            ]
        })
        .collect();
    save_line_plot(
        &LinePlot {
            title: "Denoising PSNR of network a: training vs held-out images".into(),
            x_label: "σ".into(),
            y_label: "PSNR (dB)".into(),
            x_scale: Scale::Log,
            y_scale: Scale::Linear,
        },
        &psnr,
        &dir.join("psnr_vs_sigma.png"),
    )?;
    // histograms of paired similarity, as lines of counts per bin
    let bins = 20;
    let hist: Vec<Series> = report
        .sizes
        .iter()
        .map(|s| {
            let mut counts = vec![0usize; bins];
            for v in &s.network.paired_similarity {
                let b = (((v + 1.0) / 2.0) * bins as f32)
                    .floor()
                    .clamp(0.0, bins as f32 - 1.0) as usize;
                counts[b] += 1;
            }
            Series {
                label: format!("N = {}", s.n),
                points: counts
                    .iter()
                    .enumerate()
                    .map(|(b, c)| (-1.0 + (b as f64 + 0.5) * 2.0 / bins as f64, *c as f64))
                    .collect(),
            }
        })
        .collect();
    save_line_plot(
        &LinePlot {
            title: "Paired-sample correlation (network a vs b), histogram".into(),
            x_label: "correlation".into(),
            y_label: "samples".into(),
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
        },
        &hist,
        &dir.join("similarity_histogram.png"),
    )?;

    let mut html = Html::new(&format!("Generalization study: {}", study.root().display()));
    html.paragraph(&format!(
        "Data {}; N ∈ {:?}; {} samples per network (same seeds for a and b); similarity = {}.",
        report.config.train.data.source,
        report.config.sizes,
        report.config.samples,
        report.similarity
    ));
    let rows: Vec<Vec<String>> = report
        .sizes
        .iter()
        .map(|s| {
            let gap = s
                .network
                .train_psnr_a
                .last()
                .zip(s.network.test_psnr_a.last())
                .map(|(a, b)| a.psnr - b.psnr);
            vec![
                s.n.to_string(),
                format!("{:.3}", s.network.median_paired_similarity),
                format!("{:.3}", s.network.nearest_a.median_own_similarity),
                format!("{:.3}", s.network.nearest_a.median_other_similarity),
                format!("{:.3}", s.empirical_optimal.median_paired_similarity),
                gap.map(|g| format!("{g:.2}")).unwrap_or_default(),
                format!(
                    "{:.2e}",
                    s.network.model_variance.last().copied().unwrap_or(f64::NAN)
                ),
            ]
        })
        .collect();
    html.table(
        &[
            "N",
            "a↔b samples",
            "sample↔nearest S₁",
            "sample↔nearest S₂",
            "empirical-optimal a↔b",
            "train−test PSNR gap (dB, largest σ)",
            "model variance (largest σ)",
        ],
        &rows,
    );
    html.figure("figures/similarity_vs_n.png", "median correlations vs N")
        .figure(
            "figures/similarity_histogram.png",
            "distribution of paired-sample correlations",
        )
        .figure("figures/psnr_vs_sigma.png", "train vs test PSNR")
        .figure("figures/model_variance.png", "model variance vs N");
    html.heading("Samples and their nearest training images");
    for s in &report.sizes {
        html.figure(
            &format!("figures/pairs_N{}.png", s.n),
            &format!("N = {}: each row: sample of a, its nearest image in S₁, sample of b (same seed), its nearest image in S₂", s.n),
        );
    }
    html.save(&study.root().join("report.html"))?;
    Ok(())
}
