//! Intervals for a study's figures: a median (or fraction) over several replicated pairs of
//! networks, each with several samples, and its 95% interval by the hierarchical bootstrap
//! (resample the pairs, then the samples within each drawn pair), so that both the variation
//! between initialisations and training sets and the variation between samples widen it.

use crate::rng::{stream, Purpose};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// A point estimate with its 95% bootstrap interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The statistic over all the values.
    pub estimate: f64,
    /// 2.5% quantile of the bootstrap distribution.
    pub lo: f64,
    /// 97.5% quantile.
    pub hi: f64,
}

impl Interval {
    /// Whether this interval lies entirely above `other`.
    pub fn above(&self, other: &Interval) -> bool {
        self.lo > other.hi
    }
}

/// Bootstrap resamples per interval: enough for the 2.5% and 97.5% quantiles to move by well
/// under the interval's width between seeds.
pub const RESAMPLES: usize = 2000;

/// The statistic of an interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statistic {
    /// The median (the upper one of an even count).
    Median,
    /// The mean (of 0/1 indicators: a fraction).
    Mean,
}

impl Statistic {
    fn of(self, v: &mut [f64]) -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        match self {
            Statistic::Median => {
                let k = v.len() / 2;
                *v.select_nth_unstable_by(k, f64::total_cmp).1
            }
            Statistic::Mean => v.iter().sum::<f64>() / v.len() as f64,
        }
    }
}

/// The statistic of all values of all `groups` (one group per pair) and its 95% interval by the
/// hierarchical bootstrap, drawn from stream (`seed`, Bootstrap, `index`). Empty groups are
/// dropped; no values at all give NaN everywhere. One group of one value gives a zero-width
/// interval: nothing was replicated.
pub fn hierarchical(groups: &[Vec<f64>], statistic: Statistic, seed: u64, index: u64) -> Interval {
    let groups: Vec<&Vec<f64>> = groups.iter().filter(|g| !g.is_empty()).collect();
    let mut all: Vec<f64> = groups.iter().flat_map(|g| g.iter().copied()).collect();
    let estimate = statistic.of(&mut all);
    if groups.is_empty() {
        return Interval {
            estimate,
            lo: f64::NAN,
            hi: f64::NAN,
        };
    }
    let mut rng = stream(seed, Purpose::Bootstrap, index);
    let mut stats = Vec::with_capacity(RESAMPLES);
    let mut pool = Vec::with_capacity(all.len());
    for _ in 0..RESAMPLES {
        pool.clear();
        for _ in 0..groups.len() {
            let g = groups[rng.random_range(0..groups.len())];
            pool.extend((0..g.len()).map(|_| g[rng.random_range(0..g.len())]));
        }
        stats.push(statistic.of(&mut pool));
    }
    stats.sort_by(f64::total_cmp);
    let q = |p: f64| stats[((p * (RESAMPLES - 1) as f64).round() as usize).min(RESAMPLES - 1)];
    Interval {
        estimate,
        lo: q(0.025).min(estimate),
        hi: q(0.975).max(estimate),
    }
}

/// [`hierarchical`] over one value per pair (a figure measured once per pair of networks, such as
/// the model variance): the pairs alone are resampled.
pub fn over_pairs(values: &[f64], statistic: Statistic, seed: u64, index: u64) -> Interval {
    let groups: Vec<Vec<f64>> = values.iter().map(|v| vec![*v]).collect();
    hierarchical(&groups, statistic, seed, index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_hold_the_estimate_and_stay_within_the_values() {
        let groups = vec![
            (0..32).map(|i| 0.80 + i as f64 * 0.002).collect::<Vec<_>>(),
            (0..32).map(|i| 0.85 + i as f64 * 0.002).collect(),
            (0..32).map(|i| 0.90 + i as f64 * 0.002).collect(),
        ];
        let iv = hierarchical(&groups, Statistic::Median, 1, 0);
        assert!(iv.lo <= iv.estimate && iv.estimate <= iv.hi, "{iv:?}");
        assert!(iv.lo >= 0.80 && iv.hi <= 0.962, "{iv:?}");
        // the spread between pairs widens it beyond one pair's own spread
        let one = hierarchical(&groups[1..2], Statistic::Median, 1, 0);
        assert!(iv.hi - iv.lo > one.hi - one.lo, "{iv:?} vs {one:?}");
        // the same seed gives the same interval
        assert_eq!(iv, hierarchical(&groups, Statistic::Median, 1, 0));
    }

    #[test]
    fn separated_groups_give_separated_intervals_and_fractions_stay_in_range() {
        let low = vec![vec![0.1, 0.2, 0.15], vec![0.12, 0.18, 0.2]];
        let high = vec![vec![0.9, 0.8, 0.85], vec![0.88, 0.82, 0.95]];
        let (l, h) = (
            hierarchical(&low, Statistic::Median, 0, 0),
            hierarchical(&high, Statistic::Median, 0, 1),
        );
        assert!(h.above(&l) && !l.above(&h));
        let f = hierarchical(&[vec![1.0, 0.0, 0.0, 0.0]], Statistic::Mean, 0, 0);
        assert_eq!(f.estimate, 0.25);
        assert!(f.lo >= 0.0 && f.hi <= 1.0 && f.lo < f.hi, "{f:?}");
        let single = over_pairs(&[3e-4], Statistic::Median, 0, 0);
        assert_eq!((single.lo, single.estimate, single.hi), (3e-4, 3e-4, 3e-4));
        assert!(hierarchical(&[], Statistic::Median, 0, 0).estimate.is_nan());
    }
}
