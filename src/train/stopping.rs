//! When a run has converged: training to convergence instead of to a step count.
//!
//! At every log step the trainer measures two losses with fixed noise, so that they move only
//! when the weights do: on held-out images (generalization) and on as many training images
//! (fit). Each is the mean over the validation σ's of MSE/σ², so every noise level counts alike.
//! A run whose neither loss has improved by [`StopRule::min_improvement`] (relative to its best)
//! for [`StopRule::patience`] steps is on a plateau. A plateau first halves the learning rate
//! (at most [`StopRule::decays`] times, a step-down schedule driven by the data rather than by a
//! plan), and the plateau after the last halving stops the run. `steps` stays a hard cap.
//!
//! Why both losses: a network trained on a few images converges to the empirical optimum, the
//! memorizing denoiser, and on the way its held-out loss rises while its training loss still
//! falls. Watching the held-out loss alone would stop it half-way to memorizing; watching the
//! training loss alone would keep a large-N run going long after it generalizes as well as it
//! will. A run stops only when it has stopped learning anything, whichever regime it is in, so
//! no threshold on N is needed.
//!
//! The rule is a pure function of the logged losses: a resumed run replays the losses of its
//! `metrics.jsonl` up to its checkpoint and makes, step for step, the decisions the
//! uninterrupted run made ([`Plateau::replay`]).

use crate::config::{check, InvalidField};
use serde::{Deserialize, Serialize};

/// The stopping rule of a run trained with `--steps auto`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StopRule {
    /// A loss improves when it falls below (1 − this) × its best so far.
    pub min_improvement: f64,
    /// Steps without an improvement of either loss that make a plateau.
    pub patience: u64,
    /// Learning-rate halvings (one per plateau) before the next plateau stops the run.
    pub decays: u32,
}

impl Default for StopRule {
    /// 1% over 1000 steps, two halvings: see docs/generalization.md for how these
    /// were chosen.
    fn default() -> Self {
        Self {
            min_improvement: 0.01,
            patience: 1000,
            decays: 2,
        }
    }
}

impl StopRule {
    /// The log interval the rule is watched at when none is given: a tenth of the patience, so a
    /// plateau is seen within 10% of when it began.
    pub fn log_every(&self) -> u64 {
        (self.patience / 10).max(1)
    }

    /// Checks the numbers before any work starts.
    pub fn validate(&self) -> Result<(), InvalidField> {
        check(
            self.min_improvement > 0.0 && self.min_improvement < 1.0,
            "stop.min_improvement",
            self.min_improvement,
            "must be in (0, 1), e.g. 0.01 for 1%",
        )?;
        check(
            self.patience > 0,
            "stop.patience",
            self.patience,
            "must be ≥ 1 step",
        )?;
        check(
            self.decays <= 16,
            "stop.decays",
            self.decays,
            "must be at most 16",
        )
    }
}

/// The two losses the rule watches, at one log step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossPoint {
    /// Steps done.
    pub step: u64,
    /// Held-out images: mean over the validation σ's of MSE/σ².
    pub held_out: f64,
    /// Training images, the same measure.
    pub train: f64,
}

/// What the rule says at a log step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Keep training at the same learning rate.
    Continue,
    /// A plateau: halve the learning rate and go on.
    Decay,
    /// A plateau after the last halving: the run has converged.
    Stop,
}

/// Why a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// The stopping rule found the losses on a plateau after its last halving.
    Converged,
    /// The hard cap (`steps`) came first: not converged by the rule's standard.
    Cap,
    /// A fixed number of steps was asked for (no stopping rule).
    Steps,
}

/// Where and why a run stopped (`stopped.json` in the run folder).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stopped {
    /// The last step trained.
    pub step: u64,
    /// Why.
    pub reason: StopReason,
    /// Learning-rate halvings the rule made.
    pub decays: u32,
    /// The run's cap (its `steps`).
    pub cap: u64,
}

/// The rule's state after the log steps seen so far.
#[derive(Clone, Debug, PartialEq)]
pub struct Plateau {
    rule: StopRule,
    best_held_out: f64,
    best_train: f64,
    /// The last step at which a loss improved or the learning rate was halved.
    since: u64,
    decays: u32,
    stopped: bool,
}

impl Plateau {
    /// Nothing seen yet.
    pub fn new(rule: StopRule) -> Self {
        Self {
            rule,
            best_held_out: f64::INFINITY,
            best_train: f64::INFINITY,
            since: 0,
            decays: 0,
            stopped: false,
        }
    }

    /// The state after `points` (in step order): what a resumed run continues from.
    pub fn replay(rule: StopRule, points: impl IntoIterator<Item = LossPoint>) -> Self {
        let mut p = Self::new(rule);
        for point in points {
            if p.observe(point) == Decision::Stop {
                break;
            }
        }
        p
    }

    /// Learning-rate halvings made so far.
    pub fn decays(&self) -> u32 {
        self.decays
    }

    /// Whether the rule has stopped the run.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Takes the losses of one log step and says what to do. A non-finite loss never counts as
    /// an improvement.
    pub fn observe(&mut self, p: LossPoint) -> Decision {
        if self.stopped {
            return Decision::Stop;
        }
        let keep = 1.0 - self.rule.min_improvement;
        let mut improved = false;
        for (loss, best) in [
            (p.held_out, &mut self.best_held_out),
            (p.train, &mut self.best_train),
        ] {
            if loss.is_finite() && loss < keep * *best {
                *best = loss;
                improved = true;
            }
        }
        if improved {
            self.since = p.step;
            return Decision::Continue;
        }
        if p.step.saturating_sub(self.since) < self.rule.patience {
            return Decision::Continue;
        }
        self.since = p.step;
        if self.decays < self.rule.decays {
            self.decays += 1;
            Decision::Decay
        } else {
            self.stopped = true;
            Decision::Stop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> StopRule {
        StopRule {
            min_improvement: 0.01,
            patience: 100,
            decays: 1,
        }
    }

    /// Runs the rule over a loss curve sampled every 10 steps; returns (decay steps, stop step).
    fn run(curve: impl Fn(u64) -> (f64, f64), cap: u64) -> (Vec<u64>, Option<u64>) {
        let mut p = Plateau::new(rule());
        let mut decays = Vec::new();
        for step in (10..=cap).step_by(10) {
            let (held_out, train) = curve(step);
            match p.observe(LossPoint {
                step,
                held_out,
                train,
            }) {
                Decision::Continue => {}
                Decision::Decay => decays.push(step),
                Decision::Stop => return (decays, Some(step)),
            }
        }
        (decays, None)
    }

    #[test]
    fn stops_on_a_plateau_and_not_before() {
        // falls by 10% per 10 steps until step 500, flat after
        let curve = |s: u64| {
            let v = 0.9f64.powi(s.min(500) as i32 / 10);
            (v, v)
        };
        let (decays, stop) = run(curve, 5000);
        // the last improvement is at 500: a plateau 100 steps later halves, 100 more stop
        assert_eq!(decays, [600]);
        assert_eq!(stop, Some(700));
        // a curve that keeps improving by more than 1% per window never stops before the cap
        let falling = |s: u64| (1.0 / s as f64, 1.0 / s as f64);
        assert_eq!(run(falling, 5000), (vec![], None));
    }

    #[test]
    fn a_falling_training_loss_keeps_a_memorizing_run_going() {
        // held-out loss flat from the start (and rising later), training loss falling until 2000
        let curve = |s: u64| {
            (
                1.0 + s as f64 * 1e-4,
                0.995f64.powi(s.min(2000) as i32 / 10),
            )
        };
        let (decays, stop) = run(curve, 10_000);
        assert!(
            decays[0] > 2000 && stop.unwrap() > 2000,
            "{decays:?} {stop:?}"
        );
        // with only the held-out loss it would have stopped early
        let held_out_only = |s: u64| (1.0 + s as f64 * 1e-4, 1.0);
        assert!(run(held_out_only, 10_000).1.unwrap() < 500);
    }

    #[test]
    fn small_noisy_wiggles_are_not_improvements_and_nan_never_is() {
        let curve = |s: u64| {
            let wiggle = if (s / 10) % 2 == 0 { 0.004 } else { -0.004 };
            (1.0 + wiggle, f64::NAN)
        };
        let (_, stop) = run(curve, 5000);
        assert!(stop.is_some_and(|s| s <= 300), "{stop:?}");
    }

    #[test]
    fn replaying_a_prefix_continues_like_the_whole_run() {
        let curve = |s: u64| {
            let v = 0.95f64.powi(s.min(800) as i32 / 10);
            (v, v * 0.5)
        };
        let points: Vec<LossPoint> = (1..=200)
            .map(|i| {
                let (held_out, train) = curve(i * 10);
                LossPoint {
                    step: i * 10,
                    held_out,
                    train,
                }
            })
            .collect();
        let mut whole = Plateau::new(rule());
        let decisions: Vec<Decision> = points.iter().map(|p| whole.observe(*p)).collect();
        for cut in [0, 50, 85, 90, 95, 150] {
            let mut resumed = Plateau::replay(rule(), points[..cut].iter().copied());
            let rest: Vec<Decision> = points[cut..].iter().map(|p| resumed.observe(*p)).collect();
            assert_eq!(rest, decisions[cut..], "resumed after {cut} log steps");
        }
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in [
            StopRule {
                min_improvement: 0.0,
                ..rule()
            },
            StopRule {
                patience: 0,
                ..rule()
            },
        ] {
            assert!(bad.validate().is_err());
        }
        assert!(StopRule::default().validate().is_ok());
    }
}
