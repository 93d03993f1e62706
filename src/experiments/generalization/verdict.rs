//! What a study found, computed from its intervals rather than typed: per N, the figures of
//! every replicated pair summarized as estimates with 95% bootstrap intervals
//! ([`SizeSummary`]), a regime for each N (memorizing, generalizing, inconclusive, with the
//! checks that failed), and the study's verdict: memorization up to N_mem, generalization from
//! N_gen, and whether the two networks' agreement rises with N.
//!
//! The thresholds are constants chosen once (docs/generalization.md says how), not
//! tuned per data set: a memorizing N must copy training images by the standard of Gu et al.
//! (f_mem) *and* denoise its training images better than held-out ones; a generalizing N must
//! copy none, show no train − test gap, and its two networks must agree with each other more
//! than with any training image, more than the two memorizing empirical-optimal denoisers of
//! the same sets agree, and disagree less than those (model variance).

use super::PairMetrics;
use crate::analysis::bootstrap::{hierarchical, over_pairs, Interval, Statistic};
use serde::{Deserialize, Serialize};

/// f_mem's interval must reach at least this for memorization.
pub const MEMORIZING_FRACTION: f64 = 0.5;
/// … and stay at most this for generalization.
pub const GENERALIZING_FRACTION: f64 = 0.1;
/// Where f_mem is undefined (N = 1): a sample copies the image when it correlates this well.
pub const COPY_SIMILARITY: f64 = 0.95;
/// Train − test PSNR gap (dB, at the smallest evaluation σ): a memorizer's interval lies above
/// it, a generalizer's below.
pub const GAP_DB: f64 = 1.0;

/// The figures of one N over all its pairs: estimates with 95% intervals.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SizeSummary {
    /// Replicated pairs measured.
    pub pairs: usize,
    /// Correlation of paired samples (median over pairs and samples).
    pub paired_similarity: Interval,
    /// Correlation of each sample with its most correlated own training image (networks a and b
    /// together).
    pub nearest_own_similarity: Interval,
    /// f_mem of networks a and b together (absent when N = 1).
    pub memorized_fraction: Option<Interval>,
    /// Train − test PSNR gap in dB per evaluation σ (mean of a and b per pair; median over
    /// pairs).
    pub train_test_gap: Vec<Interval>,
    /// Model variance per evaluation σ (median over pairs).
    pub model_variance: Vec<Interval>,
    /// Paired similarity of the empirical-optimal denoisers of the same sets.
    pub empirical_paired_similarity: Interval,
    /// Their model variance per evaluation σ.
    pub empirical_model_variance: Vec<Interval>,
    /// Fréchet distance of the networks' samples to held-out images in the data's PCA space
    /// (median over pairs), and its floor (training images against the same held-out images).
    #[serde(default)]
    pub frechet: Option<Interval>,
    /// The floor of `frechet`.
    #[serde(default)]
    pub frechet_floor: Option<Interval>,
    /// Mean |log₁₀| power-spectrum ratio of the samples to held-out images, and its floor.
    #[serde(default)]
    pub spectral_log_ratio: Option<Interval>,
    /// The floor of `spectral_log_ratio`.
    #[serde(default)]
    pub spectral_floor: Option<Interval>,
    /// The regime this N is in.
    pub regime: Regime,
    /// The checks of the regime's test that failed (for an inconclusive N: of both tests).
    pub failed: Vec<String>,
}

/// What the networks of one N do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Regime {
    /// They reproduce training images.
    Memorizing,
    /// They produce the same new images.
    Generalizing,
    /// Neither test passes.
    Inconclusive,
}

/// The study's verdict.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Verdict {
    /// The largest N up to which every N memorizes (`None`: the smallest does not).
    pub memorizes_up_to: Option<usize>,
    /// The smallest N from which every N generalizes (`None`: the largest does not).
    pub generalizes_from: Option<usize>,
    /// Whether the paired similarity's interval at the largest generalizing N lies entirely
    /// above the one at the smallest (`None`: fewer than two generalizing N).
    pub paired_similarity_rises: Option<bool>,
    /// Per N, the first snapshot step at which the median f_mem over pairs reached
    /// [`MEMORIZING_FRACTION`] (`None`: not by the last snapshot); empty without snapshots.
    #[serde(default)]
    pub memorization_onset: Vec<(usize, Option<u64>)>,
    /// The verdict in one paragraph, for reports.
    pub statement: String,
}

/// The first step at which the median over pairs of f_mem reached [`MEMORIZING_FRACTION`],
/// from `(step, f_mem)` points of every pair (`None` when it never did).
pub fn memorization_onset(points: &[(u64, f64)]) -> Option<u64> {
    let mut steps: Vec<u64> = points.iter().map(|p| p.0).collect();
    steps.sort_unstable();
    steps.dedup();
    steps.into_iter().find(|&step| {
        let mut v: Vec<f64> = points.iter().filter(|p| p.0 == step).map(|p| p.1).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2] >= MEMORIZING_FRACTION
    })
}

/// The sentence on training time: where memorization set in for each N.
pub fn onset_statement(onsets: &[(usize, Option<u64>)], last_step: u64) -> Option<String> {
    if onsets.is_empty() {
        return None;
    }
    let parts: Vec<String> = onsets
        .iter()
        .map(|(n, o)| match o {
            Some(step) => format!("N = {n} by step {step}"),
            None => format!("N = {n} not by step {last_step}"),
        })
        .collect();
    Some(format!(
        "Over training time, memorization (median f_mem ≥ {MEMORIZING_FRACTION}) set in for {}: the later (or never) it sets in for larger N while their paired similarity has already risen, the more these networks sit where Bonnaire et al. (2025) place generalization, before the onset of memorization.",
        parts.join(", ")
    ))
}

fn values(v: &[f32]) -> Vec<f64> {
    v.iter()
        .map(|x| *x as f64)
        .filter(|x| x.is_finite())
        .collect()
}

fn indicators(ratios: &[Option<f32>]) -> Vec<f64> {
    ratios
        .iter()
        .flatten()
        .map(|r| {
            f64::from(u8::from(
                *r < crate::analysis::memorization::MEMORIZED_RATIO,
            ))
        })
        .collect()
}

fn gap(m: &PairMetrics, i: usize) -> f64 {
    let g =
        |train: &[crate::analysis::metrics::DenoisingRow],
         test: &[crate::analysis::metrics::DenoisingRow]| { train[i].psnr - test[i].psnr };
    0.5 * (g(&m.train_psnr_a, &m.test_psnr_a) + g(&m.train_psnr_b, &m.test_psnr_b))
}

/// Summarizes the `(network, empirical optimal)` metrics of every pair at size `n`, drawing the
/// bootstrap from `seed`, and places `n` in its regime.
pub fn summarize(pairs: &[(&PairMetrics, &PairMetrics)], n: usize, seed: u64) -> SizeSummary {
    // each figure has its own bootstrap stream: (N, figure)
    let index = |figure: u64| (n as u64) << 8 | figure;
    let per_pair = |f: &dyn Fn(&PairMetrics) -> Vec<f64>, oracle: bool| -> Vec<Vec<f64>> {
        pairs
            .iter()
            .map(|(net, eo)| f(if oracle { eo } else { net }))
            .collect()
    };
    let paired = |oracle: bool, figure: u64| {
        hierarchical(
            &per_pair(&|m| values(&m.paired_similarity), oracle),
            Statistic::Median,
            seed,
            index(figure),
        )
    };
    let own = hierarchical(
        &per_pair(
            &|m| {
                let mut v = values(&m.nearest_a.own_similarity);
                v.extend(values(&m.nearest_b.own_similarity));
                v
            },
            false,
        ),
        Statistic::Median,
        seed,
        index(2),
    );
    let fractions = per_pair(
        &|m| {
            let mut v = indicators(&m.nearest_a.memorization_ratio);
            v.extend(indicators(&m.nearest_b.memorization_ratio));
            v
        },
        false,
    );
    let memorized_fraction = fractions
        .iter()
        .any(|g| !g.is_empty())
        .then(|| hierarchical(&fractions, Statistic::Mean, seed, index(3)));
    let sigmas = pairs.first().map_or(0, |(m, _)| m.model_variance.len());
    let over = |f: &dyn Fn(&PairMetrics) -> f64, oracle: bool, figure: u64| -> Interval {
        let v: Vec<f64> = pairs
            .iter()
            .map(|(net, eo)| f(if oracle { eo } else { net }))
            .collect();
        over_pairs(&v, Statistic::Median, seed, index(figure))
    };
    let train_test_gap = (0..sigmas)
        .map(|i| over(&|m| gap(m, i), false, 16 + i as u64))
        .collect();
    let model_variance = (0..sigmas)
        .map(|i| over(&|m| m.model_variance[i], false, 64 + i as u64))
        .collect();
    let empirical_model_variance = (0..sigmas)
        .map(|i| over(&|m| m.model_variance[i], true, 128 + i as u64))
        .collect();
    let quality = |f: &dyn Fn(&crate::analysis::quality::SampleQuality) -> f64, figure: u64| {
        let v: Vec<f64> = pairs
            .iter()
            .filter_map(|(net, _)| net.quality.as_ref().map(f))
            .filter(|v| v.is_finite())
            .collect();
        (!v.is_empty()).then(|| over_pairs(&v, Statistic::Median, seed, index(figure)))
    };
    let mut summary = SizeSummary {
        frechet: quality(&|q| q.frechet, 4),
        frechet_floor: quality(&|q| q.frechet_floor, 5),
        spectral_log_ratio: quality(&|q| q.spectral_log_ratio, 6),
        spectral_floor: quality(&|q| q.spectral_floor, 7),
        pairs: pairs.len(),
        paired_similarity: paired(false, 0),
        nearest_own_similarity: own,
        memorized_fraction,
        train_test_gap,
        model_variance,
        empirical_paired_similarity: paired(true, 1),
        empirical_model_variance,
        regime: Regime::Inconclusive,
        failed: Vec::new(),
    };
    (summary.regime, summary.failed) = regime(&summary);
    summary
}

/// The regime of one N from its intervals, and the checks that failed. The gap and the model
/// variance are read at the first (smallest, as the CLI lists them) evaluation σ, where copying
/// shows most.
pub fn regime(s: &SizeSummary) -> (Regime, Vec<String>) {
    let fails = |checks: Vec<(bool, String)>| -> Vec<String> {
        checks
            .into_iter()
            .filter(|(ok, _)| !ok)
            .map(|(_, why)| why)
            .collect()
    };
    let gap = s.train_test_gap.first();
    let memorizing = fails(vec![
        match &s.memorized_fraction {
            Some(f) => (
                f.lo >= MEMORIZING_FRACTION,
                format!(
                    "f_mem {:.2} [{:.2}, {:.2}] not ≥ {MEMORIZING_FRACTION}",
                    f.estimate, f.lo, f.hi
                ),
            ),
            None => (
                s.nearest_own_similarity.lo >= COPY_SIMILARITY,
                format!(
                    "nearest-own similarity {:.3} [{:.3}, {:.3}] not ≥ {COPY_SIMILARITY}",
                    s.nearest_own_similarity.estimate,
                    s.nearest_own_similarity.lo,
                    s.nearest_own_similarity.hi
                ),
            ),
        },
        (
            gap.is_some_and(|g| g.lo >= GAP_DB),
            gap.map_or("no train − test gap measured".into(), |g| {
                format!(
                    "train − test gap {:.2} dB [{:.2}, {:.2}] not ≥ {GAP_DB} dB",
                    g.estimate, g.lo, g.hi
                )
            }),
        ),
    ]);
    if memorizing.is_empty() {
        return (Regime::Memorizing, Vec::new());
    }
    let (p, own, eo) = (
        &s.paired_similarity,
        &s.nearest_own_similarity,
        &s.empirical_paired_similarity,
    );
    let (mv, eo_mv) = (s.model_variance.first(), s.empirical_model_variance.first());
    let generalizing = fails(vec![
        (
            s.memorized_fraction
                .is_some_and(|f| f.hi <= GENERALIZING_FRACTION),
            match &s.memorized_fraction {
                Some(f) => format!("f_mem {:.2} [{:.2}, {:.2}] not ≤ {GENERALIZING_FRACTION}", f.estimate, f.lo, f.hi),
                None => "f_mem undefined (N = 1)".into(),
            },
        ),
        (
            gap.is_some_and(|g| g.hi <= GAP_DB),
            gap.map_or("no train − test gap measured".into(), |g| {
                format!("train − test gap {:.2} dB [{:.2}, {:.2}] not ≤ {GAP_DB} dB", g.estimate, g.lo, g.hi)
            }),
        ),
        (
            p.above(own),
            format!(
                "paired similarity [{:.3}, {:.3}] not above nearest-own [{:.3}, {:.3}]",
                p.lo, p.hi, own.lo, own.hi
            ),
        ),
        (
            p.above(eo),
            format!(
                "paired similarity [{:.3}, {:.3}] not above the empirical-optimal pair's [{:.3}, {:.3}]",
                p.lo, p.hi, eo.lo, eo.hi
            ),
        ),
        (
            matches!((mv, eo_mv), (Some(m), Some(e)) if e.above(m)),
            match (mv, eo_mv) {
                (Some(m), Some(e)) => format!(
                    "model variance [{:.1e}, {:.1e}] not below the empirical-optimal pair's [{:.1e}, {:.1e}]",
                    m.lo, m.hi, e.lo, e.hi
                ),
                _ => "no model variance measured".into(),
            },
        ),
    ]);
    if generalizing.is_empty() {
        return (Regime::Generalizing, Vec::new());
    }
    let mut failed: Vec<String> = memorizing
        .into_iter()
        .map(|w| format!("memorizing: {w}"))
        .collect();
    failed.extend(
        generalizing
            .into_iter()
            .map(|w| format!("generalizing: {w}")),
    );
    (Regime::Inconclusive, failed)
}

/// The study's verdict from its sizes (ascending N) and their summaries.
pub fn verdict(sizes: &[(usize, &SizeSummary)]) -> Verdict {
    let memorizes_up_to = sizes
        .iter()
        .take_while(|(_, s)| s.regime == Regime::Memorizing)
        .last()
        .map(|(n, _)| *n);
    let generalizing: Vec<&(usize, &SizeSummary)> = sizes
        .iter()
        .rev()
        .take_while(|(_, s)| s.regime == Regime::Generalizing)
        .collect();
    let generalizes_from = generalizing.last().map(|(n, _)| *n);
    let paired_similarity_rises = (generalizing.len() >= 2).then(|| {
        let (largest, smallest) = (generalizing[0].1, generalizing[generalizing.len() - 1].1);
        largest.paired_similarity.above(&smallest.paired_similarity)
    });
    let mut parts = Vec::new();
    match memorizes_up_to {
        Some(n) => parts.push(format!(
            "The networks memorize up to N = {n}: their samples are copies of training images (f_mem, or correlation ≥ {COPY_SIMILARITY} at N = 1) and they denoise their training images ≥ {GAP_DB} dB better than held-out ones."
        )),
        None => parts.push("No N memorizes by this study's test.".into()),
    }
    match generalizes_from {
        Some(n) => parts.push(format!(
            "From N = {n} they generalize: no sample is a copy, no train − test gap, and the two networks trained on disjoint sets produce samples that agree with each other more than with any training image and more than two memorizing (empirical-optimal) denoisers do."
        )),
        None => parts.push("No largest N generalizes by this study's test.".into()),
    }
    match (paired_similarity_rises, generalizing.first(), generalizing.last()) {
        (Some(true), Some((hi, _)), Some((lo, _))) => parts.push(format!(
            "Their agreement rises with N: the paired similarity's interval at N = {hi} lies above the one at N = {lo}."
        )),
        (Some(false), Some((hi, _)), Some((lo, _))) => parts.push(format!(
            "Whether their agreement rises with N is not shown: the paired similarity's intervals at N = {lo} and N = {hi} overlap."
        )),
        _ => {}
    }
    let inconclusive: Vec<String> = sizes
        .iter()
        .filter(|(_, s)| s.regime == Regime::Inconclusive)
        .map(|(n, _)| n.to_string())
        .collect();
    if !inconclusive.is_empty() {
        parts.push(format!(
            "Inconclusive at N = {} (see each size's failed checks).",
            inconclusive.join(", ")
        ));
    }
    Verdict {
        memorizes_up_to,
        generalizes_from,
        paired_similarity_rises,
        memorization_onset: Vec::new(),
        statement: parts.join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::memorization::Nearest;
    use crate::analysis::metrics::DenoisingRow;

    fn rows(psnr: f64) -> Vec<DenoisingRow> {
        vec![DenoisingRow {
            sigma: 0.06,
            mse: 0.0,
            psnr,
            input_psnr: 24.6,
        }]
    }

    /// A synthetic pair's metrics: `k` samples with the given similarities, ratios and gap.
    fn metrics(
        paired: f32,
        own: f32,
        ratio: f32,
        gap: f64,
        variance: f64,
        k: usize,
    ) -> PairMetrics {
        let near = Nearest {
            own_similarity: (0..k).map(|i| own + i as f32 * 1e-4).collect(),
            other_similarity: vec![0.5; k],
            own_index: vec![0; k],
            own_l2: vec![1.0; k],
            memorization_ratio: (0..k).map(|i| Some(ratio + i as f32 * 1e-4)).collect(),
            median_own_similarity: own,
            median_other_similarity: 0.5,
            memorized_fraction: None,
        };
        PairMetrics {
            paired_similarity: (0..k).map(|i| paired + i as f32 * 1e-4).collect(),
            median_paired_similarity: paired,
            nearest_a: near.clone(),
            nearest_b: near,
            train_psnr_a: rows(30.0 + gap),
            test_psnr_a: rows(30.0),
            train_psnr_b: rows(30.0 + gap),
            test_psnr_b: rows(30.0),
            model_variance: vec![variance],
            outcomes: None,
            quality: None,
        }
    }

    fn memorizing() -> (PairMetrics, PairMetrics) {
        (
            metrics(0.6, 0.995, 0.05, 15.0, 2e-2, 16),
            metrics(0.45, 1.0, 0.0, 20.0, 3e-2, 16),
        )
    }

    fn generalizing(paired: f32) -> (PairMetrics, PairMetrics) {
        (
            metrics(paired, 0.7, 0.8, 0.0, 2e-4, 16),
            metrics(0.55, 1.0, 0.0, 20.0, 3e-3, 16),
        )
    }

    fn summary(pairs: &[(PairMetrics, PairMetrics)], n: usize) -> SizeSummary {
        let refs: Vec<(&PairMetrics, &PairMetrics)> = pairs.iter().map(|(a, b)| (a, b)).collect();
        summarize(&refs, n, 0)
    }

    #[test]
    fn each_branch_of_the_verdict() {
        let mem = summary(&[memorizing(), memorizing()], 10);
        assert_eq!(mem.regime, Regime::Memorizing, "{:?}", mem.failed);
        let gen_100 = summary(&[generalizing(0.80), generalizing(0.81)], 100);
        assert_eq!(gen_100.regime, Regime::Generalizing, "{:?}", gen_100.failed);
        let gen_1000 = summary(&[generalizing(0.92), generalizing(0.93)], 1000);
        assert_eq!(gen_1000.regime, Regime::Generalizing);
        // two equally blurry samplers: paired ≈ nearest-own → not generalizing, not memorizing
        let blurry = summary(
            &[(
                metrics(0.70, 0.70, 0.8, 0.0, 2e-4, 16),
                metrics(0.55, 1.0, 0.0, 20.0, 3e-3, 16),
            )],
            100,
        );
        assert_eq!(blurry.regime, Regime::Inconclusive);
        assert!(
            blurry
                .failed
                .iter()
                .any(|f| f.contains("not above nearest-own")),
            "{:?}",
            blurry.failed
        );
        // a network pair that disagrees more than the memorizers is not generalizing
        let wild = summary(
            &[(
                metrics(0.9, 0.7, 0.8, 0.0, 5e-3, 16),
                metrics(0.55, 1.0, 0.0, 20.0, 3e-3, 16),
            )],
            1000,
        );
        assert!(wild.failed.iter().any(|f| f.contains("model variance")));

        let v = verdict(&[(10, &mem), (100, &gen_100), (1000, &gen_1000)]);
        assert_eq!(v.memorizes_up_to, Some(10));
        assert_eq!(v.generalizes_from, Some(100));
        assert_eq!(v.paired_similarity_rises, Some(true), "{}", v.statement);
        assert!(v.statement.contains("rises with N"), "{}", v.statement);

        let flat = summary(&[generalizing(0.80), generalizing(0.801)], 1000);
        let v = verdict(&[(10, &mem), (100, &gen_100), (1000, &flat)]);
        assert_eq!(v.paired_similarity_rises, Some(false));

        let v = verdict(&[(10, &blurry), (100, &gen_100)]);
        assert_eq!(v.memorizes_up_to, None);
        assert_eq!(v.generalizes_from, Some(100));
        assert_eq!(v.paired_similarity_rises, None);
        assert!(
            v.statement.contains("Inconclusive at N = 10"),
            "{}",
            v.statement
        );

        // an inconclusive largest N: no generalization claimed
        let v = verdict(&[(10, &mem), (1000, &blurry)]);
        assert_eq!(v.generalizes_from, None);
    }

    #[test]
    fn onset_is_the_first_step_whose_median_reaches_the_threshold() {
        let points = [
            (125, 0.0),
            (125, 0.1),
            (250, 0.4),
            (250, 0.6),
            (250, 0.7),
            (500, 0.9),
        ];
        assert_eq!(memorization_onset(&points), Some(250));
        assert_eq!(memorization_onset(&[(125, 0.1), (250, 0.2)]), None);
        let s = onset_statement(&[(10, Some(250)), (1000, None)], 4000).unwrap();
        assert!(
            s.contains("N = 10 by step 250") && s.contains("N = 1000 not by step 4000"),
            "{s}"
        );
    }

    #[test]
    fn one_training_image_memorizes_by_correlation() {
        let mut one = memorizing().0;
        for near in [&mut one.nearest_a, &mut one.nearest_b] {
            near.memorization_ratio = vec![None; 16];
        }
        let s = summary(&[(one, memorizing().1)], 1);
        assert!(s.memorized_fraction.is_none());
        assert_eq!(s.regime, Regime::Memorizing, "{:?}", s.failed);
    }
}
