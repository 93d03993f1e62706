//! Pages that tie records together: the demo's `index.html` (drawn from `demo.json` and the
//! study and Jacobian records it points to, with captions that state the measured numbers), and
//! [`rebuild`], which redraws the page of any folder the tool writes — a run, a study, a
//! Jacobian, an optimality study, the demo — from its JSON records alone, or, for a folder
//! holding several, each of them and an `index.html` linking them.

use super::html::Html;
use super::plot::{save_line_plot, LinePlot, Scale, Series};
use super::ReportError;
use crate::experiments::demo::{self, DemoDir};
use crate::experiments::dir::Experiment;
use crate::experiments::generalization::{Generalization, RunKey, SizeMetrics, StudyDir};
use crate::experiments::jacobian::{Jacobian, JacobianDir};
use crate::experiments::optimality::{Optimality, OptimalityDir};
use crate::train::record::{RunDir, RunRecord};
use std::path::{Path, PathBuf};

/// What kind of folder a path is, by the record it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `demo.json`.
    Demo,
    /// `optimality.json`.
    Optimality,
    /// `study.json`.
    Study,
    /// `jacobian.json`.
    Jacobian,
    /// `config.json` of a training run.
    Run,
}

impl Kind {
    /// The kind of `dir`, if it holds a record.
    pub fn of(dir: &Path) -> Option<Kind> {
        [
            (demo::Demo::RECORD_FILE, Kind::Demo),
            (Optimality::RECORD_FILE, Kind::Optimality),
            (Generalization::RECORD_FILE, Kind::Study),
            (Jacobian::RECORD_FILE, Kind::Jacobian),
            ("config.json", Kind::Run),
        ]
        .into_iter()
        .find(|(file, _)| dir.join(file).is_file())
        .map(|(_, kind)| kind)
    }

    /// The page this kind of folder gets.
    pub fn page(self) -> &'static str {
        match self {
            Kind::Demo => "index.html",
            _ => "report.html",
        }
    }
}

/// Redraws the page of one folder of a known kind.
pub fn rebuild_one(dir: &Path, kind: Kind) -> Result<(), ReportError> {
    match kind {
        Kind::Demo => {
            let demo = DemoDir::new(dir);
            write_demo(&demo, &demo.read_record()?)
        }
        Kind::Optimality => {
            let d = OptimalityDir::new(dir);
            super::optimality::write(&d, &d.read_record()?)
        }
        Kind::Study => {
            let d = StudyDir::new(dir);
            super::study::write(&d, &d.read_record()?)
        }
        Kind::Jacobian => {
            let d = JacobianDir::new(dir);
            super::jacobian::write(&d, &d.read_record()?)
        }
        Kind::Run => super::run::write(&RunDir::new(dir)),
    }
}

/// Redraws the page of `dir`, or of every folder directly inside it that holds a record plus
/// an `index.html` linking them (when `dir` holds no record itself). Returns the pages written
/// (relative to `dir`); none means nothing there is ours.
pub fn rebuild(dir: &Path) -> Result<Vec<(PathBuf, Kind)>, ReportError> {
    if let Some(kind) = Kind::of(dir) {
        rebuild_one(dir, kind)?;
        return Ok(vec![(PathBuf::from(kind.page()), kind)]);
    }
    let mut children: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    children.sort();
    let mut pages = Vec::new();
    for child in children {
        if let Some(kind) = Kind::of(&child) {
            rebuild_one(&child, kind)?;
            let name = child.file_name().map(PathBuf::from).unwrap_or_default();
            pages.push((name.join(kind.page()), kind));
        }
    }
    if !pages.is_empty() {
        let mut html = Html::new(&format!("tweedie: {}", dir.display()));
        let rows: Vec<Vec<String>> = pages
            .iter()
            .map(|(p, k)| vec![format!("{k:?}").to_lowercase(), p.display().to_string()])
            .collect();
        html.paragraph("The folders here that hold tweedie records, each with its own page:");
        html.links(&rows);
        html.save(&dir.join("index.html"))?;
    }
    Ok(pages)
}

fn correlation(v: f32) -> String {
    format!("{v:.2}")
}

/// The headline: memorization at the small N, generalization at the large N, in numbers.
fn headline(small: &SizeMetrics, large: &SizeMetrics) -> Vec<String> {
    let gap = |s: &SizeMetrics| match (
        s.network.train_psnr_a.first(),
        s.network.test_psnr_a.first(),
    ) {
        (Some(train), Some(test)) => Some((train.sigma, train.psnr - test.psnr)),
        _ => None,
    };
    // the words follow the study's verdict (its intervals), never the expectation; a study
    // measured before verdicts existed has none and claims neither effect
    use crate::experiments::generalization::verdict::Regime;
    let regime = |s: &SizeMetrics| s.summary.as_ref().map(|m| m.regime);
    let own_small = small.network.nearest_a.median_own_similarity;
    let memorizes = regime(small) == Some(Regime::Memorizing);
    let (paired_large, own_large) = (
        large.network.median_paired_similarity,
        large.network.nearest_a.median_own_similarity,
    );
    let generalizes = regime(large) == Some(Regime::Generalizing);
    let mut lines = vec![format!(
        "{} N = {}: the networks' samples correlate {} (median) with their nearest image in \
         their own training set and {} with the other network's set; the two networks of the \
         pair, sampled from the same noise, correlate {} with each other.",
        if memorizes {
            "Memorization at"
        } else {
            "No memorization shown at"
        },
        small.n,
        correlation(own_small),
        correlation(small.network.nearest_a.median_other_similarity),
        correlation(small.network.median_paired_similarity),
    )];
    lines.push(format!(
        "{} N = {}: the two networks trained on disjoint sets correlate {} with each other from \
         the same noise, and their samples {} with their nearest training image{}.",
        if generalizes {
            "Generalization at"
        } else {
            "At"
        },
        large.n,
        correlation(paired_large),
        correlation(own_large),
        if generalizes {
            ": they make the same new images, not copies of training images"
        } else {
            ""
        },
    ));
    if let (Some((sigma, g_small)), Some((_, g_large))) = (gap(small), gap(large)) {
        lines.push(format!(
            "At σ = {:.0}/255 the N = {} network denoises its training images {g_small:.1} dB \
             better than held-out ones; the N = {} network {g_large:.1} dB. Model variance \
             E‖f_a − f_b‖²/D: {:.1e} at N = {}, {:.1e} at N = {}.",
            sigma * 255.0,
            small.n,
            large.n,
            small
                .network
                .model_variance
                .first()
                .copied()
                .unwrap_or(f64::NAN),
            small.n,
            large
                .network
                .model_variance
                .first()
                .copied()
                .unwrap_or(f64::NAN),
            large.n,
        ));
    }
    lines
}

/// Writes the demo's figures and `index.html` (and the pages of its study and Jacobians).
pub fn write_demo(dir: &DemoDir, record: &demo::Record) -> Result<(), ReportError> {
    let sdir = dir.study();
    let study = sdir.read_record()?;
    super::study::write(&sdir, &study)?;
    let mut traces = Vec::new();
    for j in &record.jacobians {
        let jdir = JacobianDir::new(dir.root().join(&j.dir));
        let rec = jdir.read_record()?;
        super::jacobian::write(&jdir, &rec)?;
        traces.push((j, rec));
    }
    for s in &study.sizes {
        for split in [crate::data::Split::A, crate::data::Split::B] {
            super::run::write(&sdir.run(RunKey {
                n: s.n,
                split,
                pair: 0,
            }))?;
        }
    }
    let mut html = Html::new("tweedie demo: memorization → generalization");
    html.paragraph(
        "Pairs of small bias-free denoisers trained on disjoint sets of N images, sampled from \
         the same noise. What to look for (Kadkhodaie et al. 2024): trained on few images, each \
         network's samples are copies of its own training images; trained on many, the two \
         networks generate the same new images. What this run shows is below, decided from its \
         measurements' intervals.",
    );
    if let Some(v) = &study.verdict {
        html.paragraph(&format!("Verdict: {}", v.statement));
    }
    if let (Some(small), Some(large)) = (study.sizes.first(), study.sizes.last()) {
        for line in headline(small, large) {
            html.paragraph(&line);
        }
        for s in [small, large] {
            html.figure(
                &format!("study/figures/pairs_N{}.png", s.n),
                &format!(
                    "N = {}: each row a sample of network a, its nearest image in a's training \
                     set, the sample of network b from the same noise, its nearest image in b's \
                     set. Median correlation a ↔ b: {}; sample ↔ nearest own: {}.",
                    s.n,
                    correlation(s.network.median_paired_similarity),
                    correlation(s.network.nearest_a.median_own_similarity)
                ),
            );
        }
    }
    html.figure(
        "study/figures/similarity_vs_n.png",
        "Median correlations against N: a ↔ b paired samples, and each sample with its nearest \
         training image (own and other set).",
    );
    let series: Vec<Series> = traces
        .iter()
        .map(|(j, rec)| Series {
            label: format!("N = {}", j.n),
            points: rec
                .results
                .iter()
                .map(|r| (r.sigma as f64, r.effective_dimension()))
                .collect(),
        })
        .collect();
    if !series.is_empty() {
        save_line_plot(
            &LinePlot {
                title: "Effective dimensionality tr J vs σ".into(),
                x_label: "σ".into(),
                y_label: "tr J".into(),
                x_scale: Scale::Log,
                y_scale: Scale::Log,
            },
            &series,
            &dir.root().join("trace_vs_sigma.png"),
        )?;
        let words: Vec<String> = traces
            .iter()
            .filter_map(|(j, rec)| {
                let r = rec.results.first()?;
                Some(format!("{:.0} at N = {}", r.effective_dimension(), j.n))
            })
            .collect();
        let sigma0 = traces
            .first()
            .and_then(|(_, r)| r.results.first())
            .map_or(f32::NAN, |r| r.sigma);
        html.figure(
            "trace_vs_sigma.png",
            &format!(
                "tr J of one network per N at the same noisy held-out image: {} at σ = {sigma0:.2} \
                 (of D = {}).",
                words.join(", "),
                traces
                    .first()
                    .map_or(0, |(_, r)| r.image_shape.iter().product::<usize>())
            ),
        );
        for (j, rec) in &traces {
            if let Some(r) = rec.results.first() {
                html.figure(
                    &format!("{}/eigenvectors_sigma{:.3}.png", j.dir, r.sigma),
                    &format!(
                        "Top eigenvectors of the N = {} network's Jacobian at σ = {:.2} \
                         (tr J = {:.0}); its page: {}/report.html.",
                        j.n,
                        r.sigma,
                        r.effective_dimension(),
                        j.dir
                    ),
                );
            }
        }
    }
    let first_run: Option<RunRecord> = study.sizes.first().and_then(|s| {
        sdir.run(RunKey {
            n: s.n,
            split: crate::data::Split::A,
            pair: 0,
        })
        .read_config()
        .ok()
    });
    let cfg = &record.config.study;
    html.heading("Summary");
    html.table(
        &["", ""],
        &[
            vec![
                "data".into(),
                format!("{} ({})", cfg.train.data.source, record.config.data_note),
            ],
            vec![
                "data fingerprint".into(),
                first_run.map(|r| r.data_fingerprint).unwrap_or_default(),
            ],
            vec![
                "sizes N".into(),
                cfg.sizes
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ],
            vec![
                "network".into(),
                format!(
                    "{:?}, {} scales × {} channels",
                    cfg.train.net.arch, cfg.train.net.blocks, cfg.train.net.channels
                ),
            ],
            vec![
                "training".into(),
                format!(
                    "{} steps of {} ({}), σ ∈ [{}, {}]",
                    cfg.train.steps,
                    cfg.train.batch,
                    cfg.train.describe_schedule(),
                    cfg.train.sigma_min,
                    cfg.train.sigma_max
                ),
            ],
            vec!["paired samples per network".into(), cfg.samples.to_string()],
            vec!["seed".into(), cfg.seed.to_string()],
            vec!["duration".into(), format!("{:.0} s", record.seconds)],
            vec!["tweedie".into(), record.tweedie_version.clone()],
        ],
    );
    let mut links = vec![vec!["study".to_string(), "study/report.html".to_string()]];
    for j in &record.jacobians {
        links.push(vec![
            format!("Jacobian of {}", j.run),
            format!("{}/report.html", j.dir),
        ]);
    }
    for s in &study.sizes {
        for split in ["a", "b"] {
            links.push(vec![
                format!("run N{}-{split}", s.n),
                format!("study/runs/N{}-{split}/report.html", s.n),
            ]);
        }
    }
    html.heading("Pages");
    html.links(&links);
    html.save(&dir.root().join("index.html"))?;
    Ok(())
}
