//! The page of a generalization study: similarity vs N, its histogram, train/test PSNR, model
//! variance, and the paired samples with their nearest training images, drawn from `study.json`
//! and the arrays in `samples/` alone.

use super::grid::{save_grid, Scaling};
use super::html::Html;
use super::plot::{save_interval_plot, save_line_plot, Bar, LinePlot, Scale, Series};
use super::ReportError;
use crate::analysis::bootstrap::Interval;
use crate::data::{load_npy, Images, Split};
use crate::experiments::generalization::{Record, RunKey, SizeMetrics, StudyDir};

/// Rows of (sample a, nearest in S₁, sample b, nearest in S₂) for the first few samples of one
/// N, from the arrays the study keeps in `samples/`.
fn pair_figure(study: &StudyDir, n: usize) -> Result<(), ReportError> {
    let ka = RunKey {
        n,
        split: Split::A,
        pair: 0,
    };
    let kb = ka.partner();
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
    // each figure as an estimate with its interval where the study has summaries (studies
    // written before: pair 0's medians, no bars)
    let iv = |f: &dyn Fn(&SizeMetrics) -> Option<Interval>,
              fallback: &dyn Fn(&SizeMetrics) -> f64| {
        let points = ns(&|s| f(s).map_or_else(|| fallback(s), |i| i.estimate));
        let bars: Vec<Bar> = report
            .sizes
            .iter()
            .filter_map(|s| f(s).map(|i| (s.n as f64, i.lo, i.hi)))
            .collect();
        (points, bars)
    };
    let similarity = [
        (
            "network a vs b (paired samples)",
            iv(&|s| size_summary(s).map(|m| m.paired_similarity), &|s| {
                s.network.median_paired_similarity as f64
            }),
        ),
        (
            "network sample vs nearest training image",
            iv(
                &|s| size_summary(s).map(|m| m.nearest_own_similarity),
                &|s| s.network.nearest_a.median_own_similarity as f64,
            ),
        ),
        (
            "empirical-optimal a vs b",
            iv(
                &|s| size_summary(s).map(|m| m.empirical_paired_similarity),
                &|s| s.empirical_optimal.median_paired_similarity as f64,
            ),
        ),
        (
            "network f_mem (fraction of copies)",
            iv(
                &|s| size_summary(s).and_then(|m| m.memorized_fraction),
                &|s| {
                    s.network
                        .nearest_a
                        .memorized_fraction
                        .map_or(f64::NAN, |f| f as f64)
                },
            ),
        ),
    ];
    let (series, bars): (Vec<Series>, Vec<Vec<Bar>>) = similarity
        .into_iter()
        .map(|(label, (points, bars))| {
            (
                Series {
                    label: label.into(),
                    points,
                },
                bars,
            )
        })
        .unzip();
    save_interval_plot(
        &LinePlot {
            title: "Memorization → generalization (medians, 95% intervals)".into(),
            x_label: "training-set size N".into(),
            y_label: "correlation / fraction".into(),
            x_scale: Scale::Log,
            y_scale: Scale::Linear,
        },
        &series,
        &bars,
        &dir.join("similarity_vs_n.png"),
    )?;
    let sigmas = &report.config.eval_sigmas;
    let (mv, mv_bars): (Vec<Series>, Vec<Vec<Bar>>) = sigmas
        .iter()
        .enumerate()
        .map(|(j, s)| {
            let (points, bars) = iv(
                &|m| size_summary(m).and_then(|x| x.model_variance.get(j).copied()),
                &|m| m.network.model_variance[j],
            );
            (
                Series {
                    label: format!("σ = {s:.3}"),
                    points,
                },
                bars,
            )
        })
        .unzip();
    save_interval_plot(
        &LinePlot {
            title: "Model variance E‖f_a(y) − f_b(y)‖²/D on held-out images".into(),
            x_label: "training-set size N".into(),
            y_label: "per-pixel variance".into(),
            x_scale: Scale::Log,
            y_scale: Scale::Log,
        },
        &mv,
        &mv_bars,
        &dir.join("model_variance.png"),
    )?;
    let timed = report.sizes.iter().any(|s| !s.time.is_empty());
    if timed {
        time_figures(report, &dir)?;
    }
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
    match &report.verdict {
        Some(v) => {
            html.heading("Verdict");
            html.paragraph(&format!(
                "{} (Computed from the 95% intervals over {} pair(s) per N and their samples; the tests and their thresholds are in docs/generalization.md.)",
                v.statement, report.config.pairs
            ));
        }
        None => {
            html.paragraph("This study was measured before verdicts existed: re-measure it with `tweedie generalization --out DIR --aggregate` for intervals and a verdict.");
        }
    }
    let fmt = |i: &Interval, p: usize| format!("{:.p$} [{:.p$}, {:.p$}]", i.estimate, i.lo, i.hi);
    let rows: Vec<Vec<String>> = report
        .sizes
        .iter()
        .map(|s| match &s.summary {
            Some(m) => vec![
                s.n.to_string(),
                m.pairs.to_string(),
                fmt(&m.paired_similarity, 3),
                fmt(&m.nearest_own_similarity, 3),
                m.memorized_fraction
                    .as_ref()
                    .map_or("–".into(), |f| fmt(f, 2)),
                fmt(&m.empirical_paired_similarity, 3),
                m.train_test_gap
                    .first()
                    .map_or(String::new(), |g| fmt(g, 2)),
                m.model_variance.first().map_or(String::new(), |v| {
                    format!("{:.2e} [{:.2e}, {:.2e}]", v.estimate, v.lo, v.hi)
                }),
                match (m.frechet, m.frechet_floor) {
                    (Some(f), Some(floor)) => format!("{:.2} ({:.2})", f.estimate, floor.estimate),
                    _ => "–".into(),
                },
                format!("{:?}", m.regime).to_lowercase(),
            ],
            None => {
                let gap = s
                    .network
                    .train_psnr_a
                    .first()
                    .zip(s.network.test_psnr_a.first())
                    .map(|(a, b)| a.psnr - b.psnr);
                vec![
                    s.n.to_string(),
                    "1".into(),
                    format!("{:.3}", s.network.median_paired_similarity),
                    format!("{:.3}", s.network.nearest_a.median_own_similarity),
                    "–".into(),
                    format!("{:.3}", s.empirical_optimal.median_paired_similarity),
                    gap.map(|g| format!("{g:.2}")).unwrap_or_default(),
                    format!(
                        "{:.2e}",
                        s.network
                            .model_variance
                            .first()
                            .copied()
                            .unwrap_or(f64::NAN)
                    ),
                    "–".into(),
                    "–".into(),
                ]
            }
        })
        .collect();
    html.table(
        &[
            "N",
            "pairs",
            "a↔b samples",
            "sample↔nearest own",
            "f_mem",
            "empirical-optimal a↔b",
            "train−test PSNR gap (dB, smallest σ)",
            "model variance (smallest σ)",
            "sample Fréchet distance, PCA space (floor: training images)",
            "regime",
        ],
        &rows,
    );
    let failed: Vec<String> = report
        .sizes
        .iter()
        .filter_map(|s| s.summary.as_ref().map(|m| (s.n, m)))
        .filter(|(_, m)| !m.failed.is_empty())
        .map(|(n, m)| format!("N = {n}: {}", m.failed.join("; ")))
        .collect();
    if !failed.is_empty() {
        html.paragraph(&format!("Checks that failed: {}.", failed.join(" — ")));
    }
    let stops: Vec<String> = report
        .sizes
        .iter()
        .flat_map(|s| &s.runs)
        .filter_map(|r| {
            r.stopped.map(|st| {
                format!(
                    "{} {} at step {} ({} halvings)",
                    r.run,
                    match st.reason {
                        crate::train::StopReason::Converged => "converged",
                        crate::train::StopReason::Cap => "hit its cap",
                        crate::train::StopReason::Steps => "ran its steps",
                    },
                    st.step,
                    st.decays
                )
            })
        })
        .collect();
    if !stops.is_empty() {
        html.paragraph(&format!("Training: {}.", stops.join(", ")));
    }
    let outcomes: Vec<String> = report
        .sizes
        .iter()
        .flat_map(|s| {
            s.pairs()
                .into_iter()
                .enumerate()
                .filter_map(move |(p, (net, _))| net.outcomes.clone().map(|o| (s.n, p, o)))
        })
        .map(|(n, p, [a, b])| {
            let one = |o: &crate::experiments::generalization::SamplerOutcomes| {
                let stall = if o.stalled > 0 {
                    let mut sig = o.stall_sigmas.clone();
                    sig.sort_by(f32::total_cmp);
                    format!(" (median floor σ = {:.3})", sig[sig.len() / 2])
                } else {
                    String::new()
                };
                format!(
                    "{} converged, {} stalled{stall}, {} at the step cap, {} diverged",
                    o.converged, o.stalled, o.step_cap, o.diverged
                )
            };
            format!("N = {n} pair {p}: a {}; b {}", one(&a), one(&b))
        })
        .collect();
    if !outcomes.is_empty() {
        html.paragraph(&format!("Sampler outcomes: {}.", outcomes.join(" — ")));
    }
    html.figure("figures/similarity_vs_n.png", "median correlations vs N")
        .figure(
            "figures/similarity_histogram.png",
            "distribution of paired-sample correlations",
        )
        .figure("figures/psnr_vs_sigma.png", "train vs test PSNR")
        .figure("figures/model_variance.png", "model variance vs N");
    if timed {
        html.heading("Training time as an axis");
        html.paragraph(
            "Each pair measured at its runs' log-spaced snapshots (medians over pairs): Bonnaire \
             et al. (2025) find that memorization sets in at a time growing with N while the time \
             to generalize does not; where the curves of f_mem rise, the networks have begun to \
             memorize.",
        );
        for (f, what) in [
            ("time_memorized_fraction", "f_mem against training steps"),
            (
                "time_nearest_own",
                "sample ↔ nearest own training image against training steps",
            ),
            ("time_paired", "paired similarity against training steps"),
            (
                "time_model_variance",
                "model variance against training steps",
            ),
        ] {
            html.figure(&format!("figures/{f}.png"), what);
        }
    }
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

/// The study's summary of one N (absent in studies written before).
fn size_summary(
    s: &SizeMetrics,
) -> Option<&crate::experiments::generalization::verdict::SizeSummary> {
    s.summary.as_ref()
}

/// The time-axis figures: one curve per N of the median over pairs at each snapshot step.
fn time_figures(report: &Record, dir: &std::path::Path) -> Result<(), ReportError> {
    use crate::experiments::generalization::TimePoint;
    let curves = |f: &dyn Fn(&TimePoint) -> Option<f64>| -> Vec<Series> {
        report
            .sizes
            .iter()
            .filter(|s| !s.time.is_empty())
            .map(|s| {
                let mut steps: Vec<u64> = s.time.iter().map(|t| t.step).collect();
                steps.sort_unstable();
                steps.dedup();
                let points = steps
                    .iter()
                    .map(|&step| {
                        let mut v: Vec<f64> = s
                            .time
                            .iter()
                            .filter(|t| t.step == step)
                            .filter_map(f)
                            .collect();
                        v.sort_by(f64::total_cmp);
                        (step as f64, v.get(v.len() / 2).copied().unwrap_or(f64::NAN))
                    })
                    .collect();
                Series {
                    label: format!("N = {}", s.n),
                    points,
                }
            })
            .collect()
    };
    type Figure<'a> = (
        &'a str,
        &'a str,
        Scale,
        &'a dyn Fn(&TimePoint) -> Option<f64>,
    );
    let figures: [Figure; 4] = [
        ("time_memorized_fraction", "f_mem", Scale::Linear, &|t| {
            t.memorized_fraction.map(f64::from)
        }),
        (
            "time_nearest_own",
            "sample ↔ nearest own",
            Scale::Linear,
            &|t| Some(t.nearest_own_similarity as f64),
        ),
        (
            "time_paired",
            "paired similarity a ↔ b",
            Scale::Linear,
            &|t| Some(t.paired_similarity as f64),
        ),
        ("time_model_variance", "model variance", Scale::Log, &|t| {
            Some(t.model_variance)
        }),
    ];
    for (file, label, y_scale, f) in figures {
        save_line_plot(
            &LinePlot {
                title: format!("{label} against training time"),
                x_label: "training steps".into(),
                y_label: label.into(),
                x_scale: Scale::Log,
                y_scale,
            },
            &curves(f),
            &dir.join(format!("{file}.png")),
        )?;
    }
    Ok(())
}

/// The study's numbers as text for the terminal: per N, the paired similarity, the nearest-own
/// similarity and f_mem with their intervals, the empirical-optimal pair's similarity, the
/// Fréchet distance beside its floor and the regime; then the verdict.
pub fn summary(record: &Record) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    writeln!(
        out,
        "{:>7} {:>22} {:>22} {:>18} {:>14} {:>16}  regime",
        "N", "a↔b paired", "↔nearest own", "f_mem", "empirical a↔b", "Fréchet (floor)"
    )
    .ok();
    let iv = |i: &crate::analysis::bootstrap::Interval, p: usize| {
        format!("{:.p$} [{:.p$}, {:.p$}]", i.estimate, i.lo, i.hi)
    };
    for s in &record.sizes {
        let Some(m) = &s.summary else { continue };
        writeln!(
            out,
            "{:>7} {:>22} {:>22} {:>18} {:>14.3} {:>16}  {:?}",
            s.n,
            iv(&m.paired_similarity, 3),
            iv(&m.nearest_own_similarity, 3),
            m.memorized_fraction
                .as_ref()
                .map_or("–".into(), |f| iv(f, 2)),
            m.empirical_paired_similarity.estimate,
            match (m.frechet, m.frechet_floor) {
                (Some(f), Some(floor)) => format!("{:.2} ({:.2})", f.estimate, floor.estimate),
                _ => "–".into(),
            },
            m.regime
        )
        .ok();
    }
    if let Some(v) = &record.verdict {
        writeln!(out, "{}", v.statement).ok();
    }
    out
}
