//! Errors in the user's terms: the library names configuration fields and actions, the user
//! typed flags and commands.

use tweedie::config::InvalidField;
use tweedie::experiments::dir::FolderError;
use tweedie::experiments::eval::EvalError;
use tweedie::experiments::generalization::StudyError;
use tweedie::experiments::sample::SampleError;
use tweedie::train::TrainError;

/// Configuration fields whose flag is not their last segment in kebab case
/// (`net.channels` → `--channels`).
const FLAGS: &[(&str, &str)] = &[
    ("sampler.sigma_max", "--sigma0"),
    ("sampler.sigma_min", "--sigma-final"),
    (
        "sampler.steps",
        "--steps (sample) / --euler-steps (generalization)",
    ),
    (
        "sampler.batch",
        "--batch (sample) / --sample-batch (generalization)",
    ),
    ("net.image_channels", "--data"),
    ("stop.min_improvement", "--stop-min-improvement"),
    ("stop.patience", "--stop-patience"),
    ("stop.decays", "--stop-decays"),
];

/// The flag that sets a configuration field.
fn flag(field: &str) -> String {
    match FLAGS.iter().find(|(f, _)| *f == field) {
        Some((_, flag)) => flag.to_string(),
        None => {
            let last = field.rsplit('.').next().unwrap_or(field);
            format!("--{}", last.replace('_', "-"))
        }
    }
}

/// Library errors name configuration fields and actions; the user typed flags and commands.
pub(super) fn name_the_flag(err: anyhow::Error) -> anyhow::Error {
    if let Some(f) = err.chain().find_map(|e| e.downcast_ref::<InvalidField>()) {
        return anyhow::anyhow!("{} {}: {}", flag(f.field), f.value, f.expected);
    }
    if let Some(StudyError::Unfinished { study, runs }) =
        err.chain().find_map(|e| e.downcast_ref::<StudyError>())
    {
        return anyhow::anyhow!(
            "runs not finished: {}; train them first: tweedie generalization --out {} --resume",
            runs.join(", "),
            study.display()
        );
    }
    if let Some(SampleError::SizeNeeded(run)) =
        err.chain().find_map(|e| e.downcast_ref::<SampleError>())
    {
        return anyhow::anyhow!(
            "{} holds an imported network, trained on images tweedie never saw: give the samples' size with --size (e.g. --size 64)",
            run.display()
        );
    }
    match err.chain().find_map(|e| e.downcast_ref::<EvalError>()) {
        Some(EvalError::ImportedNeedsData(run)) => {
            return anyhow::anyhow!(
                "{} holds an imported network: give the images to evaluate it on with --data",
                run.display()
            )
        }
        Some(EvalError::NoOptimum(why)) => return anyhow::anyhow!("--optimum: {why}"),
        _ => {}
    }
    match err.chain().find_map(|e| e.downcast_ref::<FolderError>()) {
        Some(FolderError::NotStarted { folder, name }) => {
            return anyhow::anyhow!(
                "{} holds no {name} yet: start one there (the command without --resume)",
                folder.display()
            )
        }
        Some(FolderError::Other { folder, name }) => {
            return anyhow::anyhow!(
                "{} holds a {name} with other settings; pass --resume to continue it or choose another --out",
                folder.display()
            )
        }
        _ => {}
    }
    match err.chain().find_map(|e| e.downcast_ref::<TrainError>()) {
        Some(TrainError::Exists(run)) => anyhow::anyhow!(
            "{} already holds a run; pass --resume to continue it or choose another --out",
            run.display()
        ),
        Some(TrainError::Interrupted { run, step }) => anyhow::anyhow!(
            "interrupted at step {step}; the checkpoint is written: continue with the same command and --resume (tweedie train --resume --out {})",
            run.display()
        ),
        Some(TrainError::Diverged { step, loss }) => anyhow::anyhow!(
            "loss became {loss} at step {step}; the last checkpoint is intact: lower --lr and resume with --resume (or train with --on-nan rollback)"
        ),
        Some(TrainError::Unfinished(run)) => anyhow::anyhow!(
            "{} has no model.safetensors yet: finish training (tweedie train --resume --out {})",
            run.display(),
            run.display()
        ),
        _ => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_fields_are_reported_as_flags() {
        let sampler = tweedie::sampling::euler::EulerParams {
            sigma_min: 2.0,
            ..Default::default()
        };
        let err = anyhow::Error::new(tweedie::sampling::SamplingError::from(
            sampler.validate().unwrap_err(),
        ))
        .context("sampling");
        let msg = name_the_flag(err).to_string();
        assert!(
            msg.starts_with("--sigma-final 2: must be in (0, sigma_max"),
            "{msg}"
        );
        assert_eq!(flag("net.channels"), "--channels");
        assert_eq!(flag("lr_halve_every"), "--lr-halve-every");
    }
}
