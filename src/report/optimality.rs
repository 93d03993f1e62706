//! The page of an optimality folder, drawn from `optimality.json` and the Jacobian folders beside
//! it: MSE vs σ of the network against the optimum, the classical reference and the noisy input
//! per arm; for Gaussian fields the eigenvalues against the Wiener gains and the Fourier-band
//! fractions; for C^α the PSNR slopes against α/(α+1); for disks tr J against 5; for the
//! shuffled control both arms side by side; and each arm's top eigenvectors.

use super::html::Html;
use super::plot::{save_line_plot, LinePlot, Scale, Series};
use super::ReportError;
use crate::analysis::metrics::psnr_from_mse as psnr;
use crate::experiments::jacobian::JacobianDir;
use crate::experiments::optimality::{ArmRecord, OptimalityDir, Record, Row, Study};

fn series(label: &str, points: Vec<(f64, f64)>) -> Series {
    Series {
        label: label.into(),
        points,
    }
}

fn log_log(title: String, x: &str, y: &str) -> LinePlot {
    LinePlot {
        title,
        x_label: x.into(),
        y_label: y.into(),
        x_scale: Scale::Log,
        y_scale: Scale::Log,
    }
}

/// (σ, f(row)) for the rows of an arm where f gives a value.
fn by_sigma(arm: &ArmRecord, f: &dyn Fn(&Row) -> Option<f64>) -> Vec<(f64, f64)> {
    arm.rows
        .iter()
        .filter_map(|r| f(r).map(|v| (r.sigma as f64, v)))
        .collect()
}

/// A denoiser an arm measured: its label, its MSE in a row, and whether it is drawn against the
/// optimum (not the optimum itself, nor the noisy input, whose ratio leaves the scale).
struct Measured {
    label: &'static str,
    mse: fn(&Row) -> Option<f64>,
    over_optimum: bool,
}

/// The denoisers of an arm: the optimum and the blind bounds where they were computed.
fn measured(arm: &ArmRecord) -> Vec<Measured> {
    let at = |label, mse, over_optimum| Measured {
        label,
        mse,
        over_optimum,
    };
    let mut all = vec![at("network", |r: &Row| Some(r.network), true)];
    if arm.optimum.is_some() {
        all.push(at("optimum", |r: &Row| r.optimum, false));
    }
    if arm.rows.iter().any(|r| r.blind_optimum.is_some()) {
        all.push(at("blind optimum", |r: &Row| r.blind_optimum, true));
        all.push(at(
            "homogeneous blind optimum",
            |r: &Row| r.homogeneous_optimum,
            true,
        ));
    }
    if arm.rows.iter().any(|r| r.contour_known.is_some()) {
        all.push(at(
            "MMSE with the contour told",
            |r: &Row| r.contour_known,
            false,
        ));
    }
    all.push(at("DCT shrinkage", |r: &Row| Some(r.baseline), true));
    all.push(at("noisy input", |r: &Row| Some(r.noisy), false));
    all
}

/// MSE vs σ of one arm, every denoiser measured.
fn mse_figure(dir: &OptimalityDir, arm: &ArmRecord) -> Result<String, ReportError> {
    let lines: Vec<Series> = measured(arm)
        .into_iter()
        .map(|m| series(m.label, by_sigma(arm, &m.mse)))
        .collect();
    let name = format!("mse_{}.png", arm.name);
    save_line_plot(
        &log_log(format!("{}: MSE per pixel vs σ", arm.name), "σ", "MSE"),
        &lines,
        &dir.root().join(&name),
    )?;
    Ok(name)
}

/// Every denoiser's MSE over the optimum's vs σ, where an optimum is computed: the few percent
/// that separate the network from the optimum and its blind bounds vanish on a log-log MSE plot.
fn ratio_figure(dir: &OptimalityDir, arm: &ArmRecord) -> Result<Option<String>, ReportError> {
    if arm.rows.iter().all(|r| r.optimum.is_none()) {
        return Ok(None);
    }
    let lines: Vec<Series> = measured(arm)
        .into_iter()
        .filter(|m| m.over_optimum)
        .map(|m| series(m.label, by_sigma(arm, &|r| Some((m.mse)(r)? / r.optimum?))))
        .collect();
    // linear while the ratios stay near 1 (Gaussian fields), logarithmic when they span decades
    let top = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(1.0f64, f64::max);
    let name = format!("ratio_{}.png", arm.name);
    save_line_plot(
        &LinePlot {
            title: format!("{}: MSE over the optimum's vs σ", arm.name),
            x_label: "σ".into(),
            y_label: "MSE / optimum MSE".into(),
            x_scale: Scale::Log,
            y_scale: if top > 3.0 { Scale::Log } else { Scale::Linear },
        },
        &lines,
        &dir.root().join(&name),
    )?;
    Ok(Some(name))
}

fn table(arm: &ArmRecord) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let blind = arm.rows.iter().any(|r| r.blind_optimum.is_some());
    let mut header = vec!["σ", "network PSNR", "optimum PSNR", "network/optimum MSE"];
    if blind {
        header.extend([
            "network/blind optimum MSE",
            "network/homogeneous optimum MSE",
        ]);
    }
    let inferred = arm.rows.iter().any(|r| r.effective_sigma.is_some());
    if inferred {
        header.extend(["σ′/σ (quartiles)", "Wiener at σ′ / optimum MSE"]);
    }
    header.extend(["DCT PSNR", "noisy PSNR"]);
    let rows = arm
        .rows
        .iter()
        .map(|r| {
            let ratio = |o: Option<f64>| {
                o.map(|o| format!("{:.3}", r.network / o))
                    .unwrap_or("—".into())
            };
            let mut row = vec![
                format!("{:.4}", r.sigma),
                format!("{:.2}", psnr(r.network)),
                r.optimum
                    .map(|o| format!("{:.2}", psnr(o)))
                    .unwrap_or("—".into()),
                ratio(r.optimum),
            ];
            if blind {
                row.extend([ratio(r.blind_optimum), ratio(r.homogeneous_optimum)]);
            }
            if inferred {
                row.push(match r.effective_sigma {
                    Some([a, b, c]) => format!("{a:.2} {b:.2} {c:.2}"),
                    None => "—".into(),
                });
                row.push(match (r.wiener_at_effective_sigma, r.optimum) {
                    (Some(e), Some(o)) => format!("{:.3}", e / o),
                    _ => "—".into(),
                });
            }
            row.extend([
                format!("{:.2}", psnr(r.baseline)),
                format!("{:.2}", psnr(r.noisy)),
            ]);
            row
        })
        .collect();
    (header, rows)
}

/// The eigenvectors figure of an arm's Jacobian folder at its first σ, relative to the page.
fn eigenvector_figure(arm: &ArmRecord) -> Option<(String, f32)> {
    arm.jacobian.first().map(|j| {
        (
            format!("jacobian/{}/eigenvectors_sigma{:.3}.png", arm.name, j.sigma),
            j.sigma,
        )
    })
}

/// Writes the figures and `report.html` of an optimality folder (and the pages of its
/// Jacobian folders).
pub fn write(dir: &OptimalityDir, record: &Record) -> Result<(), ReportError> {
    for arm in &record.arms {
        // the network's, and for Gaussian fields the bias-free bound's
        for name in [arm.name.clone(), format!("{}-homogeneous", arm.name)] {
            let jdir: JacobianDir = dir.jacobian(&name);
            if jdir.record().exists() {
                let rec = jdir.read_record()?;
                super::jacobian::write(&jdir, &rec)?;
            }
        }
    }
    let cfg = &record.config;
    let title = match &cfg.study {
        Study::Gaussian { .. } => "Optimality: Gaussian fields",
        Study::CAlpha { .. } => "Optimality: C^α images",
        Study::Disks => "Optimality: disks",
        Study::Shuffled { .. } => "Inductive bias: the shuffled-pixel control",
    };
    let mut html = Html::new(title);
    html.table(
        &["setting", "value"],
        &[
            vec![
                "family".into(),
                serde_json::to_string(&cfg.study).unwrap_or_default(),
            ],
            vec!["image size".into(), format!("{0}×{0}", cfg.size)],
            vec![
                "training images per arm".into(),
                cfg.train_images.to_string(),
            ],
            vec![
                "network".into(),
                format!(
                    "{:?}, {} blocks × {} channels",
                    cfg.train.net.arch, cfg.train.net.blocks, cfg.train.net.channels
                ),
            ],
            vec![
                "training".into(),
                format!(
                    "{} steps of {}, lr {} ({}), σ ∈ [{}, {}]",
                    cfg.train.steps,
                    cfg.train.batch,
                    cfg.train.lr,
                    cfg.train.describe_schedule(),
                    cfg.train.sigma_min,
                    cfg.train.sigma_max
                ),
            ],
            vec!["held-out images per σ".into(), cfg.eval_count.to_string()],
            vec!["seed".into(), cfg.seed.to_string()],
            vec!["tweedie".into(), record.tweedie_version.clone()],
        ],
    );
    match &cfg.study {
        Study::CAlpha { .. } => slopes(dir, record, &mut html)?,
        Study::Shuffled { .. } => shuffled(dir, record, &mut html)?,
        _ => {}
    }
    for arm in &record.arms {
        arm_section(dir, record, arm, &mut html)?;
    }
    html.save(&dir.root().join("report.html"))?;
    Ok(())
}

fn arm_section(
    dir: &OptimalityDir,
    record: &Record,
    arm: &ArmRecord,
    html: &mut Html,
) -> Result<(), ReportError> {
    html.heading(&format!("Arm {}", arm.name));
    html.paragraph(&format!(
        "Network of {} trained on {} images; {} held-out images per σ; optimum: {}; classical \
         reference: {}. Measured in {:.0} s.",
        arm.run,
        arm.train_images,
        arm.eval_images,
        arm.optimum.as_deref().unwrap_or("none known"),
        arm.baseline,
        arm.measure_seconds
    ));
    let (header, rows) = table(arm);
    html.table(&header, &rows);
    if arm.rows.iter().any(|r| r.blind_optimum.is_some()) {
        html.paragraph(
            "The blind optimum is the posterior mean when σ is unknown and drawn from the prior \
             the network was trained on (its σ draws times its loss weights): on average over \
             that prior no blind denoiser trained this way can do better, and at low σ it can \
             be worse than the noisy input. The homogeneous blind optimum does not know the \
             field's amplitude either (log-uniform over 1/8 … 8): the best denoiser with \
             f(a·y) = a·f(y), which is all a bias-free network can be. σ′ is, per image, the \
             noise level whose Wiener filter comes nearest the network's output: the σ the \
             network acts as if it had inferred. The Wiener filter at σ′ is the error that σ \
             inference alone explains; the rest of the network's excess is the shape of its \
             filter.",
        );
    }
    let fig = mse_figure(dir, arm)?;
    let worst = arm
        .rows
        .iter()
        .filter_map(|r| r.optimum.map(|o| (r.sigma, r.network / o)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let caption = match worst {
        Some((s, ratio)) => format!(
            "MSE vs σ. The network is within a factor {ratio:.3} of the optimum at every σ \
             measured (the largest gap at σ = {s:.3})."
        ),
        None => "MSE vs σ of the network, the classical reference and the noisy input.".into(),
    };
    html.figure(&fig, &caption);
    if let Some(fig) = ratio_figure(dir, arm)? {
        html.figure(
            &fig,
            "The same MSEs over the optimum's (1 is optimal): the network and the classical \
             reference, with (Gaussian fields) the bounds a blind and a bias-free blind \
             denoiser cannot beat on average over the training prior.",
        );
    }
    if let Some(acc) = arm.rows.iter().filter_map(|r| r.optimum_accuracy).next() {
        let worst_rel = arm
            .rows
            .iter()
            .filter_map(|r| Some(r.optimum_accuracy?.mc_variance / r.optimum?))
            .fold(0.0f64, f64::max);
        html.paragraph(&format!(
            "The disk MMSE is estimated by importance sampling: smallest effective sample size \
             {:.0} at the first σ; its Monte-Carlo variance is at most {:.2}% of its MSE.",
            acc.min_ess,
            100.0 * worst_rel
        ));
        let trace: Vec<(f64, f64)> = arm
            .jacobian
            .iter()
            .map(|j| (j.sigma as f64, j.trace))
            .collect();
        let name = format!("trace_{}.png", arm.name);
        save_line_plot(
            &log_log(
                "tr J vs σ against the manifold dimension".into(),
                "σ",
                "tr J",
            ),
            &[
                series("network tr J", trace.clone()),
                series(
                    "dimension 5",
                    trace.iter().map(|(s, _)| (*s, 5.0)).collect(),
                ),
            ],
            &dir.root().join(&name),
        )?;
        let text = trace
            .iter()
            .map(|(s, t)| format!("{t:.1} at σ = {s:.3}"))
            .collect::<Vec<_>>()
            .join(", ");
        html.figure(
            &name,
            &format!("Effective dimensionality of the network at a held-out disk: {text}; the optimum's tends to 5 as σ → 0."),
        );
    }
    if matches!(record.config.study, Study::Gaussian { .. }) {
        gaussian_figures(dir, arm, html)?;
    }
    if let Some((fig, sigma)) = eigenvector_figure(arm) {
        html.figure(
            &fig,
            &format!(
                "Top eigenvectors of the network's Jacobian at a noisy held-out image (σ = {sigma:.3}); \
                 the full Jacobian page is jacobian/{}/report.html.",
                arm.name
            ),
        );
        html.figure(
            &format!("jacobian/{}/panel.png", arm.name),
            "The image the eigenvectors belong to: clean, noisy, denoised, and the noisy image \
             projected onto the top eigenvectors (one row per Jacobian σ).",
        );
    }
    Ok(())
}

fn gaussian_figures(
    dir: &OptimalityDir,
    arm: &ArmRecord,
    html: &mut Html,
) -> Result<(), ReportError> {
    for j in &arm.jacobian {
        let (Some(gains), Some(bands)) = (&j.optimal_eigenvalues, &j.band_fractions) else {
            continue;
        };
        let rank = |v: &[f64]| {
            v.iter()
                .enumerate()
                .map(|(k, x)| ((k + 1) as f64, *x))
                .collect()
        };
        let name = format!("eigenvalues_{}_sigma{:.3}.png", arm.name, j.sigma);
        save_line_plot(
            &LinePlot {
                title: format!("Eigenvalues vs Wiener gains, σ = {:.3}", j.sigma),
                x_label: "rank k".into(),
                y_label: "λₖ".into(),
                x_scale: Scale::Log,
                y_scale: Scale::Linear,
            },
            &[
                Some(series("network", rank(&j.eigenvalues))),
                Some(series("Wiener gains p/(p+σ²)", rank(gains))),
                j.homogeneous.as_ref().map(|h| {
                    series(
                        "homogeneous blind optimum (bias-free bound)",
                        rank(&h.eigenvalues),
                    )
                }),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>(),
            &dir.root().join(&name),
        )?;
        // the largest distance between two spectra over their top 16
        let distance = |a: &[f64], b: &[f64]| {
            let k = 16.min(a.len()).min(b.len());
            let dev = (0..k).map(|i| (a[i] - b[i]).abs()).fold(0.0f64, f64::max);
            (k, dev)
        };
        let (k16, dev) = distance(&j.eigenvalues, gains);
        let bound = j.homogeneous.as_ref().map_or(String::new(), |h| {
            let (k, net) = distance(&j.eigenvalues, &h.eigenvalues);
            let (_, own) = distance(&h.eigenvalues, gains);
            format!(
                " The top {k} are within {net:.3} of the homogeneous blind optimum's — the best \
                 a bias-free denoiser can do, which cannot use the field's known mean and \
                 amplitude, and whose own top {k} are within {own:.3} of the Wiener gains — \
                 and tr J of that bound is {:.1} (its folder: jacobian/{}-homogeneous/).",
                h.trace, arm.name
            )
        });
        html.figure(
            &name,
            &format!(
                "At σ = {:.3} the top {k16} eigenvalues are within {dev:.3} of the Wiener gains; \
                 tr J = {:.1} against the Wiener filter's {:.1}.{bound}",
                j.sigma,
                j.trace,
                j.optimal_trace.unwrap_or(f64::NAN)
            ),
        );
        let name = format!("bands_{}_sigma{:.3}.png", arm.name, j.sigma);
        save_line_plot(
            &LinePlot {
                title: format!(
                    "Energy of eigenvector k in its octave of scales, σ = {:.3}",
                    j.sigma
                ),
                x_label: "rank k".into(),
                y_label: "fraction".into(),
                x_scale: Scale::Log,
                y_scale: Scale::Linear,
            },
            &[series("network eigenvectors", rank(bands))],
            &dir.root().join(&name),
        )?;
        let mean = bands.iter().sum::<f64>() / bands.len().max(1) as f64;
        html.figure(
            &name,
            &format!(
                "On average {:.0}% of each top eigenvector's energy lies along the Wiener \
                 filter's eigenvectors of its Wiener mode's octave of scales (variance within \
                 2^(γ/2); for a periodic field, the Fourier modes of its octave of radial \
                 frequencies). 100% for the Wiener filter itself.",
                100.0 * mean
            ),
        );
    }
    Ok(())
}

fn slopes(dir: &OptimalityDir, record: &Record, html: &mut Html) -> Result<(), ReportError> {
    html.heading("Rates: PSNR slope against α/(α+1)");
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for arm in &record.arms {
        let Some(s) = &arm.slope else { continue };
        let fmt = |f: &Option<crate::analysis::rate::LineFit>| {
            f.map(|f| format!("{:.3} ± {:.3}", f.slope, f.stderr))
                .unwrap_or("—".into())
        };
        rows.push(vec![
            arm.name.clone(),
            format!("{:.3}", s.optimal),
            fmt(&s.network),
            s.network
                .map(|f| format!("{:+.3}", f.slope - s.optimal))
                .unwrap_or("—".into()),
            fmt(&s.baseline),
            fmt(&s.contour_known),
            format!("[{}, {}]", s.range[0], s.range[1]),
        ]);
        lines.push(series(
            &format!("{} network", arm.name),
            arm.rows
                .iter()
                .map(|r| (-20.0 * (r.sigma as f64).log10(), psnr(r.network)))
                .collect(),
        ));
    }
    html.table(
        &[
            "arm",
            "α/(α+1)",
            "network slope ± s.e.",
            "network − optimal",
            "DCT slope ± s.e.",
            "contour told: slope ± s.e.",
            "σ range",
        ],
        &rows,
    );
    save_line_plot(
        &LinePlot {
            title: "PSNR of the networks vs −20·log₁₀σ".into(),
            x_label: "−20·log₁₀σ (dB)".into(),
            y_label: "PSNR (dB)".into(),
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
        },
        &lines,
        &dir.root().join("slopes.png"),
    )?;
    html.figure(
        "slopes.png",
        "PSNR against −20·log₁₀σ: the optimal rate MSE ∝ σ^(2α/(α+1)) is a line of slope α/(α+1); \
         the table gives each network's fitted slope over the σ range, and that of the MMSE with \
         the contour told (a lower bound on the optimum, exact in closed form; spectral \
         construction only), which shows whether the rate holds on this grid over that range.",
    );
    Ok(())
}

fn shuffled(dir: &OptimalityDir, record: &Record, html: &mut Html) -> Result<(), ReportError> {
    let (Some(a), Some(b)) = (record.arm("original"), record.arm("shuffled")) else {
        return Ok(());
    };
    html.heading("Original vs shuffled pixels");
    let curve = |arm: &ArmRecord| {
        arm.rows
            .iter()
            .map(|r| (r.sigma as f64, psnr(r.network)))
            .collect::<Vec<_>>()
    };
    save_line_plot(
        &LinePlot {
            title: "PSNR vs σ, same N, seed and budget".into(),
            x_label: "σ".into(),
            y_label: "PSNR (dB)".into(),
            x_scale: Scale::Log,
            y_scale: Scale::Linear,
        },
        &[
            series("original", curve(a)),
            series("shuffled pixels", curve(b)),
            series(
                "noisy input",
                a.rows
                    .iter()
                    .map(|r| (r.sigma as f64, psnr(r.noisy)))
                    .collect(),
            ),
        ],
        &dir.root().join("shuffled_psnr.png"),
    )?;
    let gaps: Vec<String> = a
        .rows
        .iter()
        .zip(&b.rows)
        .map(|(x, y)| {
            format!(
                "{:.2} dB at σ = {:.3}",
                psnr(x.network) - psnr(y.network),
                x.sigma
            )
        })
        .collect();
    html.figure(
        "shuffled_psnr.png",
        &format!(
            "The network trained on the original images is ahead of the one trained on shuffled \
             pixels by {}.",
            gaps.join(", ")
        ),
    );
    let traces: Vec<String> = a
        .jacobian
        .iter()
        .zip(&b.jacobian)
        .map(|(x, y)| format!("{:.1} vs {:.1} at σ = {:.3}", x.trace, y.trace, x.sigma))
        .collect();
    html.paragraph(&format!(
        "tr J, original vs shuffled: {}.",
        traces.join(", ")
    ));
    Ok(())
}

/// The study's numbers as text for the terminal: per arm, PSNR of the network, the optimum (or
/// the C^α bound with the contour told), the classical reference and the noisy input per σ,
/// the slopes, and the Jacobian traces and top eigenvalues against their bounds.
pub fn summary(record: &Record) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for arm in &record.arms {
        writeln!(out, "{}:", arm.name).ok();
        // C^α has no computed optimum; its lower bound (the contour told) stands in the column
        let bound = arm.rows.iter().any(|r| r.contour_known.is_some());
        let (label, reference): (&str, fn(&Row) -> Option<f64>) = if bound {
            ("told", |r| r.contour_known)
        } else {
            ("optimum", |r| r.optimum)
        };
        writeln!(
            out,
            "  {:>8} {:>9} {:>9} {:>9} {:>9} {:>10}",
            "σ",
            "network",
            label,
            "DCT",
            "noisy",
            format!("net/{}", &label[..3])
        )
        .ok();
        for r in &arm.rows {
            let opt = reference(r).map_or("—".into(), |o| format!("{:.2}", psnr(o)));
            let ratio = reference(r).map_or("—".into(), |o| format!("{:.3}", r.network / o));
            writeln!(
                out,
                "  {:>8.4} {:>9.2} {:>9} {:>9.2} {:>9.2} {:>10}",
                r.sigma,
                psnr(r.network),
                opt,
                psnr(r.baseline),
                psnr(r.noisy),
                ratio
            )
            .ok();
        }
        if let Some(s) = &arm.slope {
            if let Some(f) = s.network {
                writeln!(
                    out,
                    "  slope {:.3} ± {:.3} (optimal α/(α+1) = {:.3}) over σ ∈ [{}, {}]",
                    f.slope, f.stderr, s.optimal, s.range[0], s.range[1]
                )
                .ok();
            }
            if let Some(f) = s.contour_known {
                writeln!(
                    out,
                    "  slope with the contour told {:.3} ± {:.3}",
                    f.slope, f.stderr
                )
                .ok();
            }
        }
        for j in &arm.jacobian {
            let mut line = format!("  σ = {:.3}: tr J = {:.1}", j.sigma, j.trace);
            if let Some(t) = j.optimal_trace {
                line += &format!(" (Wiener filter {t:.1}");
                if let Some(h) = &j.homogeneous {
                    line += &format!(", bias-free bound {:.1}", h.trace);
                }
                line += ")";
            }
            if let (Some(net), Some(h)) = (j.eigenvalues.first(), &j.homogeneous) {
                let bound = h.eigenvalues.first().copied().unwrap_or(f64::NAN);
                line += &format!("; top eigenvalue {net:.3} (bias-free bound {bound:.3})");
            }
            writeln!(out, "{line}").ok();
        }
    }
    out
}
