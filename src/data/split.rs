//! Disjoint training splits S₁ (`a`) and S₂ (`b`) of the same size N, as in the paper's
//! memorization/generalization experiment.
//!
//! One permutation of the pool, seeded by `split_seed`, is dealt out alternately: positions
//! 0, 2, 4, … go to `a`, positions 1, 3, 5, … to `b`. So `a` and `b` never share an image,
//! the `a` set of size N is contained in the `a` set of size 10N (likewise for `b`), and the
//! whole study only depends on one seed. The optional de-duplication pass drops, while walking
//! the permutation, every image whose correlation with an already kept image exceeds the
//! threshold, so near-copies can't sit on both sides.

use super::{DataError, Images};
use crate::similarity::correlation;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Which of the two disjoint training sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The paper's S₁.
    A,
    /// The paper's S₂.
    B,
}

/// How to draw a training set from a pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitSpec {
    /// N, the training-set size; `None` trains on the whole pool (no pairing possible).
    pub train_size: Option<usize>,
    /// Which of the two disjoint sets.
    pub split: Split,
    /// Seed of the permutation both sets are dealt from (the same for `a` and `b`).
    pub split_seed: u64,
    /// Drop images whose correlation with a kept one exceeds this (e.g. 0.95).
    pub dedup: Option<f32>,
}

/// Indices into the pool of the training set described by `spec`.
pub fn select(pool: &Images, spec: &SplitSpec) -> Result<Vec<usize>, DataError> {
    let m = pool.len();
    let Some(n) = spec.train_size else {
        return Ok((0..m).collect());
    };
    let what = format!("--train-size {n} --split {:?}", spec.split).to_lowercase();
    if n == 0 {
        return Err(DataError::Split {
            what,
            reason: "the training set must hold at least one image".into(),
        });
    }
    if 2 * n > m {
        return Err(DataError::Split {
            what,
            reason: format!(
                "two disjoint sets of {n} need {} images but the pool has {m}; use --train-size {} or less",
                2 * n,
                m / 2
            ),
        });
    }
    let mut perm: Vec<usize> = (0..m).collect();
    perm.shuffle(&mut ChaCha8Rng::seed_from_u64(spec.split_seed));
    let kept = match spec.dedup {
        None => {
            perm.truncate(2 * n);
            perm
        }
        Some(threshold) => dedup(pool, &perm, threshold, 2 * n).ok_or_else(|| DataError::Split {
            what: what.clone(),
            reason: format!(
                "after de-duplication at correlation {threshold} fewer than {} distinct images remain; lower N or raise --dedup",
                2 * n
            ),
        })?,
    };
    let offset = match spec.split {
        Split::A => 0,
        Split::B => 1,
    };
    Ok(kept.into_iter().skip(offset).step_by(2).take(n).collect())
}

/// Walks `order`, keeping an image unless it correlates above `threshold` with one already kept;
/// stops after `want` images. `None` if fewer remain.
fn dedup(pool: &Images, order: &[usize], threshold: f32, want: usize) -> Option<Vec<usize>> {
    let mut kept: Vec<usize> = Vec::with_capacity(want);
    for &i in order {
        if kept.len() == want {
            break;
        }
        let x = pool.image(i);
        if kept
            .iter()
            .all(|&k| correlation(x, pool.image(k)) <= threshold)
        {
            kept.push(i);
        }
    }
    (kept.len() == want).then_some(kept)
}

/// Fills an epoch for small training sets: the paper repeats a set of N images until an epoch
/// holds at least `min_epoch` of them. Returns the epoch length in images.
pub fn epoch_len(n: usize, min_epoch: usize) -> usize {
    n * min_epoch.div_ceil(n).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(m: usize) -> Images {
        // image i is a distinct ramp so correlations are meaningful
        let mut data = Vec::new();
        for i in 0..m {
            for p in 0..16 {
                data.push(((i * 7 + p * (i % 5 + 1)) % 16) as f32 / 16.0);
            }
        }
        Images::new(data, [m, 1, 4, 4])
    }

    fn spec(n: usize, split: Split) -> SplitSpec {
        SplitSpec {
            train_size: Some(n),
            split,
            split_seed: 11,
            dedup: None,
        }
    }

    #[test]
    fn a_and_b_are_disjoint_and_nested() {
        let p = pool(100);
        let a10 = select(&p, &spec(10, Split::A)).unwrap();
        let b10 = select(&p, &spec(10, Split::B)).unwrap();
        let a40 = select(&p, &spec(40, Split::A)).unwrap();
        let b40 = select(&p, &spec(40, Split::B)).unwrap();
        assert!(a40.iter().all(|i| !b40.contains(i)));
        assert!(a10.iter().all(|i| a40.contains(i)));
        assert!(b10.iter().all(|i| b40.contains(i)));
        assert_eq!(a10.len(), 10);
    }

    #[test]
    fn a_and_b_share_no_image_by_content() {
        // a pool with repeated images: indices differ but contents may not, unless de-duplicated
        let base = pool(30);
        let p = Images::concat(&[base.clone(), base]);
        let mut s = spec(8, Split::A);
        s.dedup = Some(0.9999);
        let a = select(&p, &s).unwrap();
        s.split = Split::B;
        let b = select(&p, &s).unwrap();
        let hash = |i: usize| p.select(&[i]).fingerprint();
        let ha: std::collections::HashSet<String> = a.iter().map(|&i| hash(i)).collect();
        assert!(
            b.iter().all(|&i| !ha.contains(&hash(i))),
            "a and b share an image"
        );
        assert!(a.iter().all(|i| !b.contains(i)));
    }

    #[test]
    fn too_large_split_names_the_limit() {
        let err = select(&pool(10), &spec(6, Split::A))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--train-size 5"), "{err}");
    }

    #[test]
    fn dedup_removes_exact_copies() {
        let base = pool(5);
        let copies = Images::concat(&[base.clone(), base.clone(), base]);
        let mut s = spec(2, Split::A);
        s.dedup = Some(0.99);
        let a = select(&copies, &s).unwrap();
        s.split = Split::B;
        let b = select(&copies, &s).unwrap();
        for &i in &a {
            for &j in &b {
                assert!(correlation(copies.image(i), copies.image(j)) <= 0.99);
            }
        }
        s.train_size = Some(3);
        assert!(select(&copies, &s).is_err(), "only 5 distinct images exist");
    }

    #[test]
    fn epochs_repeat_small_sets() {
        assert_eq!(epoch_len(1, 1000), 1000);
        assert_eq!(epoch_len(3, 10), 12);
        assert_eq!(epoch_len(5000, 1000), 5000);
    }
}
