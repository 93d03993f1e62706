//! Restoration with a denoiser as prior: each clean image is measured by the operator of a
//! [`Task`] and restored by the constrained coarse-to-fine ascent (Kadkhodaie & Simoncelli 2021,
//! Algorithm 2); with a reference, the restoration and the bare measurement Mᵀc are scored
//! against it (PSNR, SSIM). `restore.json` in the output folder.

use super::dir::Experiment;
use crate::analysis::metrics::{mse, psnr_from_mse, ssim};
use crate::config::InvalidField;
use crate::data::Images;
use crate::denoise::Denoiser;
use crate::progress::Progress;
use crate::sampling::ascent::{restore, AscentParams, Constraint, Outcome};
use crate::sampling::operators::Task;
use crate::sampling::SamplingError;
use serde::{Deserialize, Serialize};

/// The inverse problem and how it is solved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The inverse problem.
    pub task: Task,
    /// The ascent (β = 0.01 by default for restoration: [`AscentParams::for_restoration`]).
    pub ascent: AscentParams,
    /// Seed of random masks and projections and of the ascent's noise.
    pub seed: u64,
}

/// One image to restore: its name, the clean image `[1, c, h, w]` it is measured from, and the
/// ground truth to score against, if any.
pub struct Input {
    /// Its name (a file path) in the record.
    pub name: String,
    /// The image measured.
    pub clean: Images,
    /// The ground truth for PSNR and SSIM.
    pub reference: Option<Images>,
}

/// One restored image in `restore.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    /// Its name.
    pub image: String,
    /// Ascent steps taken.
    pub steps: usize,
    /// How the ascent ended.
    pub outcome: Outcome,
    /// PSNR of the measurement placed back in image space (Mᵀc) against the reference.
    pub psnr_naive: Option<f64>,
    /// PSNR of the restoration against the reference.
    pub psnr: Option<f64>,
    /// SSIM of the restoration against the reference.
    pub ssim: Option<f64>,
}

/// `restore.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// The operator, in words.
    pub task: String,
    /// The inverse problem.
    pub operator: Task,
    /// The seed.
    pub seed: u64,
    /// The ascent's parameters.
    pub ascent: AscentParams,
    /// One row per image, in the inputs' order.
    pub images: Vec<Row>,
}

/// The restoration as an [`Experiment`]: its record is `restore.json`.
pub struct Restore;

impl Experiment for Restore {
    const NAME: &'static str = "restoration";
    const RECORD_FILE: &'static str = "restore.json";
    type Config = Config;
    type Record = Record;
}

/// Errors of a restoration.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// A bad operator or ascent setting.
    #[error("invalid restoration setting")]
    Invalid(#[from] InvalidField),
    /// The ascent failed.
    #[error(transparent)]
    Sampling(#[from] SamplingError),
    /// Inputs of several shapes (one operator measures them all).
    #[error("{name}: image is {got:?}, the others {want:?}")]
    Shape {
        /// The image.
        name: String,
        /// Its shape.
        got: [usize; 3],
        /// The first input's.
        want: [usize; 3],
    },
}

/// Each input's restoration and its measurement placed back in image space, `[1, c, h, w]`.
pub struct Restored {
    /// Mᵀc.
    pub naive: Images,
    /// The restoration.
    pub restored: Images,
}

/// Measures and restores every input (of one shape) with `denoiser` as the prior.
pub fn run(
    cfg: &Config,
    denoiser: &impl Denoiser,
    inputs: &[Input],
    progress: &dyn Progress,
) -> Result<(Record, Vec<Restored>), RestoreError> {
    cfg.ascent.validate()?;
    let Some(first) = inputs.first() else {
        return Ok((record(cfg, "nothing".into(), Vec::new()), Vec::new()));
    };
    let shape = first.clean.image_shape();
    for input in inputs {
        let got = input.clean.image_shape();
        if got != shape
            || input
                .reference
                .as_ref()
                .is_some_and(|r| r.image_shape() != shape)
        {
            return Err(RestoreError::Shape {
                name: input.name.clone(),
                got,
                want: shape,
            });
        }
    }
    let op = cfg.task.build(shape, cfg.seed)?;
    let measurements: Vec<Vec<f32>> = inputs
        .iter()
        .map(|x| op.measure(x.clean.image(0)))
        .collect();
    progress.log(&format!("{} on {} image(s)", op.describe(), inputs.len()));
    let constraint = Constraint {
        op: op.as_ref(),
        measurements: &measurements,
    };
    let out = restore(denoiser, shape, constraint, &cfg.ascent, cfg.seed, progress)?;
    let [c, h, w] = shape;
    let mut rows = Vec::new();
    let mut restorations = Vec::new();
    for (k, input) in inputs.iter().enumerate() {
        let naive = Images::new(op.adjoint(&measurements[k]), [1, c, h, w]);
        let restored = out.images.select(&[k]);
        let score = |x: &Images, r: &Images| psnr_from_mse(mse(x.as_slice(), r.as_slice()));
        let reference = input.reference.as_ref();
        let trajectory = &out.trajectories[k];
        rows.push(Row {
            image: input.name.clone(),
            steps: trajectory.steps,
            outcome: trajectory.outcome,
            psnr_naive: reference.map(|r| score(&naive, r)),
            psnr: reference.map(|r| score(&restored, r)),
            ssim: reference.map(|r| ssim(restored.as_slice(), r.as_slice(), shape)),
        });
        restorations.push(Restored { naive, restored });
    }
    Ok((record(cfg, op.describe(), rows), restorations))
}

fn record(cfg: &Config, task: String, images: Vec<Row>) -> Record {
    Record {
        task,
        operator: cfg.task.clone(),
        seed: cfg.seed,
        ascent: cfg.ascent.clone(),
        images,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::{Family, GaussianField};
    use crate::denoise::Wiener;

    /// With the Wiener filter as prior, a restored box beats the empty box against the truth,
    /// the known pixels stay as measured, and an input of another size is refused by name.
    #[test]
    fn restores_scores_and_refuses_mixed_shapes() {
        let field = GaussianField::default();
        let family = Family::Gaussian(field.clone());
        let clean = family.generate(12, 2, 3).unwrap();
        let inputs: Vec<Input> = (0..2)
            .map(|k| Input {
                name: format!("x{k}"),
                clean: clean.select(&[k]),
                reference: Some(clean.select(&[k])),
            })
            .collect();
        let cfg = Config {
            task: Task::InpaintBox {
                top: 3,
                left: 3,
                height: 5,
                width: 5,
            },
            ascent: AscentParams {
                max_steps: 400,
                ..AscentParams::for_restoration()
            },
            seed: 1,
        };
        let prior = Wiener::new(field);
        let silent = &crate::progress::Silent;
        let (record, restored) = run(&cfg, &prior, &inputs, silent).unwrap();
        assert_eq!(record.images.len(), 2);
        for (row, r) in record.images.iter().zip(&restored) {
            assert!(row.psnr.unwrap() > row.psnr_naive.unwrap(), "{row:?}");
            let (got, known) = (r.restored.as_slice()[0], r.naive.as_slice()[0]);
            assert!(
                (got - known).abs() < 1e-5,
                "a known pixel: {got} vs {known}"
            );
        }
        let other = Input {
            name: "big".into(),
            clean: family.generate(16, 1, 4).unwrap(),
            reference: None,
        };
        let mixed = [inputs.into_iter().next().unwrap(), other];
        let err = run(&cfg, &prior, &mixed, silent).err().expect("refused");
        assert!(err.to_string().starts_with("big: image is"), "{err}");
    }
}
