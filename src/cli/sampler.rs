//! Sampler flags shared by `sample`, `restore`, `generalization` and the demo; they become one
//! [`Sampler`] value.

use clap::{Args, ValueEnum};
use tweedie::sampling::ascent::AscentParams;
use tweedie::sampling::euler::EulerParams;
use tweedie::sampling::Sampler;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamplerKind {
    /// Stochastic coarse-to-fine gradient ascent (Kadkhodaie & Simoncelli 2021).
    Ascent,
    /// Deterministic Euler steps of the probability-flow ODE on a geometric σ schedule.
    Euler,
}

/// Ascent parameters (and the σ range the Euler sampler shares).
#[derive(Args, Debug, Clone)]
pub struct AscentArgs {
    /// Initial step size h₀.
    #[arg(long, default_value_t = 0.01)]
    pub h0: f64,
    /// Fraction β of the noise removed per step (smaller: more stochastic, more steps)
    /// [default: 0.1 for sampling, 0.01 for restoration].
    #[arg(long)]
    pub beta: Option<f64>,
    /// Initial noise level σ₀.
    #[arg(long, default_value_t = 1.0)]
    pub sigma0: f64,
    /// Stop when the estimated noise level falls below this.
    #[arg(long, default_value_t = 0.01)]
    pub sigma_final: f64,
    /// Step cap.
    #[arg(long, default_value_t = 3000)]
    pub max_steps: usize,
    /// Keep y every this many steps in snapshots.npy (0: never).
    #[arg(long, default_value_t = 0)]
    pub snapshot_every: usize,
}

impl AscentArgs {
    /// The parameters for sampling.
    pub fn params(&self, batch: usize) -> AscentParams {
        self.params_from(AscentParams::default(), batch)
    }

    /// The parameters for restoration ([`AscentParams::for_restoration`] unless given).
    pub fn restoration_params(&self, batch: usize) -> AscentParams {
        self.params_from(AscentParams::for_restoration(), batch)
    }

    fn params_from(&self, defaults: AscentParams, batch: usize) -> AscentParams {
        AscentParams {
            h0: self.h0,
            beta: self.beta.unwrap_or(defaults.beta),
            sigma0: self.sigma0,
            sigma_final: self.sigma_final,
            max_steps: self.max_steps,
            snapshot_every: self.snapshot_every,
            batch,
            ..defaults
        }
    }
}

/// `--sampler` and the ascent's flags.
#[derive(Args, Debug, Clone)]
pub struct SamplerArgs {
    /// Sampler.
    #[arg(long, value_enum, default_value_t = SamplerKind::Ascent)]
    pub sampler: SamplerKind,
    #[command(flatten)]
    pub ascent: AscentArgs,
}

impl SamplerArgs {
    /// The sampler; Euler runs `euler_steps` steps from --sigma0 down to --sigma-final.
    pub fn sampler(&self, euler_steps: usize, batch: usize) -> Sampler {
        match self.sampler {
            SamplerKind::Ascent => Sampler::Ascent(self.ascent.params(batch)),
            SamplerKind::Euler => Sampler::Euler(EulerParams {
                sigma_max: self.ascent.sigma0,
                sigma_min: self.ascent.sigma_final,
                steps: euler_steps,
                batch,
                ..EulerParams::default()
            }),
        }
    }
}
