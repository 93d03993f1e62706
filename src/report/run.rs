//! The report of a training run: loss and validation-PSNR curves from `metrics.jsonl`, an
//! evaluation table when `eval.json` exists, and `report.html` tying them together.

use super::html::Html;
use super::plot::{save_line_plot, LinePlot, Scale, Series};
use super::ReportError;
use crate::analysis::metrics::DenoisingRow;
use crate::train::record::{read_metrics, EvalRecord, RunDir, RunRecord};

/// PSNR-vs-σ series of an evaluation.
pub fn psnr_series(label: &str, rows: &[DenoisingRow]) -> Series {
    Series {
        label: label.into(),
        points: rows.iter().map(|r| (r.sigma as f64, r.psnr)).collect(),
    }
}

/// PSNR vs σ on training and held-out images, the noisy input and, when measured, the optimum.
fn eval_figure(eval: &EvalRecord, path: &std::path::Path) -> Result<(), ReportError> {
    let mut series = vec![
        psnr_series("train", &eval.train),
        psnr_series("test", &eval.test),
        Series {
            label: "noisy input".into(),
            points: eval
                .test
                .iter()
                .map(|r| (r.sigma as f64, r.input_psnr))
                .collect(),
        },
    ];
    if let Some(opt) = &eval.optimum {
        series.push(psnr_series("optimum (test)", opt));
    }
    save_line_plot(
        &LinePlot {
            title: "Denoising PSNR vs noise level".into(),
            x_label: "σ".into(),
            y_label: "PSNR (dB)".into(),
            x_scale: Scale::Log,
            y_scale: Scale::Linear,
        },
        &series,
        path,
    )?;
    Ok(())
}

/// The network's held-out MSE over the optimum's and, where measured, over the blind and the
/// homogeneous blind optima (`tweedie eval --optimum` on a Gaussian family).
fn optimum_table(html: &mut Html, eval: &EvalRecord, optimum: &[DenoisingRow]) {
    let over = |rows: &Option<Vec<DenoisingRow>>, i: usize, mse: f64| match rows
        .as_ref()
        .and_then(|rows| rows.get(i))
    {
        Some(r) => format!("{:.3}", mse / r.mse),
        None => "—".into(),
    };
    let rows: Vec<Vec<String>> = optimum
        .iter()
        .zip(&eval.test)
        .enumerate()
        .map(|(i, (o, t))| {
            vec![
                format!("{:.4}", o.sigma),
                format!("{:.3e}", t.mse),
                format!("{:.3e}", o.mse),
                format!("{:.3}", t.mse / o.mse),
                over(&eval.blind_optimum, i, t.mse),
                over(&eval.homogeneous_optimum, i, t.mse),
            ]
        })
        .collect();
    html.heading("Against the optimum").paragraph(
        "Test MSE over the Wiener filter's at the true σ, over the blind optimum (σ unknown, \
         drawn from this run's training prior) and over the homogeneous blind optimum (the \
         field's amplitude unknown too: the best f(a·y) = a·f(y), a bias-free network's bound; \
         both optimal on average over the prior, not at each σ).",
    );
    html.table(
        &[
            "σ",
            "test MSE",
            "optimum MSE",
            "/ optimum",
            "/ blind",
            "/ homogeneous",
        ],
        &rows,
    );
}

/// Writes `figures/` and `report.html` of a run.
pub fn write(run: &RunDir) -> Result<(), ReportError> {
    let record: RunRecord = run
        .read_config()
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", run.config().display())))?;
    let metrics = read_metrics(run)?;
    let figures = run.figures();
    std::fs::create_dir_all(&figures)?;
    let cfg = &record.config;
    let mut html = Html::new(&format!("tweedie run: {}", run.root().display()));
    html.heading("Configuration").table(
        &["setting", "value"],
        &[
            vec!["data".into(), cfg.data.source.clone()],
            vec![
                "training images".into(),
                format!(
                    "{} (split {:?}, split seed {})",
                    record.train_images, cfg.data.split.split, cfg.data.split.split_seed
                ),
            ],
            vec![
                "image shape (C, H, W)".into(),
                format!("{:?}", record.image_shape),
            ],
            vec![
                "network".into(),
                format!(
                    "{:?}, {} channels, {} blocks / {} layers, {} parameters",
                    cfg.net.arch,
                    cfg.net.channels,
                    cfg.net.blocks,
                    cfg.net.layers,
                    record.num_params
                ),
            ],
            vec![
                "training".into(),
                format!(
                    "{} steps × {} images, lr {} ({}), σ ∈ [{}, {}] ({:?}), loss weighting {:?}, {}",
                    cfg.steps,
                    cfg.batch,
                    cfg.lr,
                    cfg.describe_schedule(),
                    cfg.sigma_min,
                    cfg.sigma_max,
                    cfg.sigma_sampling,
                    cfg.loss_weighting,
                    match cfg.ema {
                        Some(b) => format!("weights averaged with decay {b}"),
                        None => "no weight averaging".into(),
                    }
                ),
            ],
            vec!["seed".into(), cfg.seed.to_string()],
            vec!["data fingerprint".into(), record.data_fingerprint.clone()],
            vec!["tweedie version".into(), record.tweedie_version.clone()],
        ],
    );
    if !metrics.is_empty() {
        let loss = Series {
            label: "training loss".into(),
            points: metrics.iter().map(|m| (m.step as f64, m.loss)).collect(),
        };
        save_line_plot(
            &LinePlot {
                title: "Training loss (sum of squares per image)".into(),
                x_label: "step".into(),
                y_label: "loss".into(),
                x_scale: Scale::Linear,
                y_scale: Scale::Log,
            },
            &[loss],
            &figures.join("loss.png"),
        )?;
        let sigmas: Vec<f32> = metrics[0].validation.iter().map(|r| r.sigma).collect();
        let val: Vec<Series> = sigmas
            .iter()
            .enumerate()
            .map(|(j, s)| Series {
                label: format!("σ = {:.3}", s),
                points: metrics
                    .iter()
                    .filter_map(|m| m.validation.get(j).map(|r| (m.step as f64, r.psnr)))
                    .collect(),
            })
            .collect();
        save_line_plot(
            &LinePlot {
                title: "Validation PSNR (held-out images)".into(),
                x_label: "step".into(),
                y_label: "PSNR (dB)".into(),
                x_scale: Scale::Linear,
                y_scale: Scale::Linear,
            },
            &val,
            &figures.join("validation.png"),
        )?;
        html.heading("Training")
            .figure("figures/loss.png", "training loss")
            .figure("figures/validation.png", "validation PSNR during training");
        let last = metrics.last().expect("non-empty");
        html.table(
            &["σ", "PSNR (dB)", "noisy PSNR (dB)", "gain (dB)"],
            &last
                .validation
                .iter()
                .map(|r| {
                    vec![
                        format!("{:.4}", r.sigma),
                        format!("{:.2}", r.psnr),
                        format!("{:.2}", r.input_psnr),
                        format!("{:.2}", r.psnr - r.input_psnr),
                    ]
                })
                .collect::<Vec<_>>(),
        );
    }
    if let Ok(text) = std::fs::read_to_string(run.file("eval.json")) {
        if let Ok(eval) = serde_json::from_str::<EvalRecord>(&text) {
            eval_figure(&eval, &figures.join("psnr_vs_sigma.png"))?;
            html.heading("Evaluation: train vs test").figure(
                "figures/psnr_vs_sigma.png",
                "PSNR vs σ on training and held-out images",
            );
            let rows: Vec<Vec<String>> = eval
                .train
                .iter()
                .zip(&eval.test)
                .map(|(a, b)| {
                    vec![
                        format!("{:.4}", a.sigma),
                        format!("{:.2}", a.input_psnr),
                        format!("{:.2}", a.psnr),
                        format!("{:.2}", b.psnr),
                        format!("{:.2}", a.psnr - b.psnr),
                    ]
                })
                .collect();
            html.table(
                &["σ", "noisy (dB)", "train (dB)", "test (dB)", "gap (dB)"],
                &rows,
            );
            if let Some(optimum) = &eval.optimum {
                optimum_table(&mut html, &eval, optimum);
            }
        }
    }
    if run.file("figures/denoised.png").exists() {
        html.heading("Examples").figure(
            "figures/denoised.png",
            "held-out images: clean / noisy / denoised, one row per σ",
        );
    }
    if run.file("samples/samples.png").exists() {
        html.heading("Samples").figure(
            "samples/samples.png",
            "samples from the network's prior (stochastic coarse-to-fine ascent)",
        );
        if run.file("samples/trajectory.png").exists() {
            html.figure(
                "samples/trajectory.png",
                "effective noise level along the ascent",
            );
        }
    }
    html.save(&run.file("report.html"))?;
    Ok(())
}

/// `tweedie eval`'s numbers as text: PSNR vs σ on the training and held-out images (noisy,
/// each, their gap, the held-out MSE) and, where the data's family has a known optimum, the
/// held-out MSE beside the optimum's, the blind optimum's and the homogeneous one's. Without
/// training rows (an imported network), the held-out table alone.
pub fn eval_summary(eval: &EvalRecord, n_train: usize, n_test: usize) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let (train, test) = (&eval.train, &eval.test);
    if train.is_empty() {
        // an imported network: held-out images only
        writeln!(out, "PSNR in dB (peak 1) on {n_test} held-out images").ok();
        writeln!(
            out,
            "{:>8} {:>10} {:>10} {:>12}",
            "σ", "noisy", "denoised", "MSE"
        )
        .ok();
        for r in test {
            writeln!(
                out,
                "{:>8.4} {:>10.2} {:>10.2} {:>12.3e}",
                r.sigma, r.input_psnr, r.psnr, r.mse
            )
            .ok();
        }
        return out;
    }
    writeln!(
        out,
        "PSNR in dB (peak 1) on {n_train} training and {n_test} held-out images"
    )
    .ok();
    writeln!(
        out,
        "{:>8} {:>10} {:>10} {:>10} {:>8} {:>12}",
        "σ", "noisy", "train", "test", "gap", "test MSE"
    )
    .ok();
    for (a, b) in train.iter().zip(test) {
        writeln!(
            out,
            "{:>8.4} {:>10.2} {:>10.2} {:>10.2} {:>8.2} {:>12.3e}",
            a.sigma,
            b.input_psnr,
            a.psnr,
            b.psnr,
            a.psnr - b.psnr,
            b.mse
        )
        .ok();
    }
    if let (Some(opt), Some(blind), Some(homogeneous)) = (
        &eval.optimum,
        &eval.blind_optimum,
        &eval.homogeneous_optimum,
    ) {
        writeln!(
            out,
            "{:>8} {:>11} {:>11} {:>11} {:>11} {:>11} {:>9} {:>9} {:>9}",
            "σ", "test MSE", "optimum", "blind", "homog.", "noisy", "/optimum", "/blind", "/homog."
        )
        .ok();
        for (((t, o), b), g) in test.iter().zip(opt).zip(blind).zip(homogeneous) {
            writeln!(
                out,
                "{:>8.4} {:>11.3e} {:>11.3e} {:>11.3e} {:>11.3e} {:>11.3e} {:>9.3} {:>9.3} {:>9.3}",
                t.sigma,
                t.mse,
                o.mse,
                b.mse,
                g.mse,
                10f64.powf(-t.input_psnr / 10.0),
                t.mse / o.mse,
                t.mse / b.mse,
                t.mse / g.mse
            )
            .ok();
        }
        writeln!(
            out,
            "(MSEs. optimum: the Wiener filter at the true σ; blind: the posterior mean for σ \
             unknown, drawn from this run's training prior; homog.: the same with the field's \
             scale unknown too, the best homogeneous f(a·y) = a·f(y) — a bias-free network's \
             bound. The last two are optimal on average over the prior, not at each σ.)"
        )
        .ok();
    }
    out
}

/// `figures/denoised.png`: an evaluation's held-out examples, `per_row` images to a row
/// ([`crate::experiments::eval::Evaluation::examples`]).
pub fn write_examples(
    examples: &crate::data::Images,
    per_row: usize,
    run: &RunDir,
) -> Result<(), ReportError> {
    if examples.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(run.figures())?;
    let zoom = (64 / examples.shape()[2]).max(1);
    super::grid::save_grid(
        examples,
        per_row,
        zoom,
        super::grid::Scaling::Clamp,
        &run.figures().join("denoised.png"),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(sigma: f32, psnr: f64) -> DenoisingRow {
        DenoisingRow {
            sigma,
            mse: 10f64.powf(-psnr / 10.0),
            psnr,
            input_psnr: 20.0,
        }
    }

    /// One line per σ with the train/test gap; the optimum's table only when there is one.
    #[test]
    fn eval_summary_lists_every_sigma_and_the_optimum_when_known() {
        let mut eval = EvalRecord {
            train: vec![row(0.1, 30.0), row(0.2, 26.0)],
            test: vec![row(0.1, 29.0), row(0.2, 25.5)],
            optimum: None,
            blind_optimum: None,
            homogeneous_optimum: None,
            images: 8,
            seed: 0,
        };
        let text = eval_summary(&eval, 8, 8);
        assert!(
            text.contains("on 8 training and 8 held-out images"),
            "{text}"
        );
        assert!(
            text.contains("  1.00 "),
            "the gap of 1 dB at σ = 0.1: {text}"
        );
        assert!(!text.contains("/optimum"), "{text}");
        eval.optimum = Some(eval.test.clone());
        eval.blind_optimum = Some(eval.test.clone());
        eval.homogeneous_optimum = Some(eval.test.clone());
        let text = eval_summary(&eval, 8, 8);
        assert!(text.contains("/optimum"), "{text}");
        // the network against itself: ratio 1
        assert!(text.contains("1.000"), "{text}");
    }

    /// An imported network's record has held-out rows only: each of them is listed.
    #[test]
    fn eval_summary_of_held_out_rows_only() {
        let eval = EvalRecord {
            train: Vec::new(),
            test: vec![row(0.1, 29.0), row(0.2, 25.5)],
            optimum: None,
            blind_optimum: None,
            homogeneous_optimum: None,
            images: 8,
            seed: 0,
        };
        let text = eval_summary(&eval, 0, 6);
        assert!(text.contains("on 6 held-out images"), "{text}");
        assert!(text.contains("29.00") && text.contains("25.50"), "{text}");
    }
}
