//! `tweedie generalization`: the paper's central experiment as one resumable command (see
//! [`tweedie::experiments::generalization`]).

use super::progress::Terminal;
use super::sampler::SamplerArgs;
use super::train::{Steps, TrainArgs, AUTO_CAP};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use tweedie::experiments::dir::{self as experiment, Run};
use tweedie::experiments::generalization::{
    self as study, Config, Generalization, RunState, StudyDir,
};

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Plan {
    /// A Slurm job-array script on stdout (one task per run, then an aggregate step).
    Slurm,
}

#[derive(Args, Debug)]
pub struct GeneralizationArgs {
    /// Training-set sizes N, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000")]
    sizes: Vec<usize>,
    /// Paired samples per network.
    #[arg(long, default_value_t = 64)]
    samples: usize,
    /// Log-spaced snapshots each run keeps (steps 125, 250, 500, …, below its cap); the study
    /// measures every pair at each, with training time as an axis. 0: none.
    #[arg(long, default_value_t = 8)]
    snapshots: usize,
    /// Independent pairs of networks per N (each its own disjoint split and initialisations):
    /// every figure then gets a 95% bootstrap interval over pairs and samples.
    #[arg(long, default_value_t = 3)]
    pairs: usize,
    /// Noise levels of the PSNR and model-variance measurements.
    #[arg(long, value_delimiter = ',', value_parser = super::sigma_arg, default_value = "15/255,50/255,100/255")]
    eval_sigmas: Vec<f32>,
    /// Images used for PSNR and model variance.
    #[arg(long, default_value_t = 256)]
    eval_count: usize,
    #[command(flatten)]
    sampler: SamplerArgs,
    /// Euler sampler: number of steps (from --sigma0 down to --sigma-final).
    #[arg(long, default_value_t = 100)]
    euler_steps: usize,
    /// Images denoised together while sampling (memory vs speed; does not change the samples).
    #[arg(long, default_value_t = 64)]
    sample_batch: usize,
    /// Print a cluster plan instead of running.
    #[arg(long, value_enum)]
    plan: Option<Plan>,
    /// Train only run K of the sweep (0-based; used by the Slurm array) and exit.
    #[arg(long)]
    task: Option<usize>,
    /// Skip training; measure a study whose runs are all finished.
    #[arg(long)]
    aggregate: bool,
    /// Runs trained at once, sharing the cores [default: one per core for networks up to
    /// 2 scales × 16 channels (measured faster than one run on all cores), else 1].
    #[arg(long)]
    jobs: Option<usize>,
    /// Training options, as for `tweedie train` (--out is the study folder; --train-size and
    /// --split are set per run; --resume continues the study: finished runs are skipped, broken
    /// ones resumed or redone).
    #[command(flatten)]
    train: TrainArgs,
}

/// The study's configuration: the one in the folder when continuing, else from the flags.
pub(super) fn config(a: &GeneralizationArgs, dir: &StudyDir) -> Result<Config> {
    if a.train.resume || a.task.is_some() || a.aggregate {
        let mut cfg = dir.resume()?;
        cfg.train.device = a.train.device;
        return Ok(cfg);
    }
    let mut cfg = Config::new(
        a.train.fresh_config(Steps::Auto(AUTO_CAP))?,
        a.sizes.clone(),
    );
    cfg.set_snapshots(a.snapshots);
    cfg.samples = a.samples;
    cfg.sampler = a.sampler.sampler(a.euler_steps, a.sample_batch);
    cfg.eval_sigmas = a.eval_sigmas.clone();
    cfg.eval_count = a.eval_count;
    cfg.pairs = a.pairs;
    Ok(dir.start(cfg)?)
}

pub fn run(a: GeneralizationArgs) -> Result<()> {
    let dir = StudyDir::new(&a.train.out);
    let cfg = config(&a, &dir)?;
    cfg.validate()?;
    // the largest N must fit twice in the pool: check before anything trains
    let largest = *cfg.runs().last().expect("validated: sizes non-empty");
    cfg.run_config(largest).data.resolve()?;
    if a.train.dry_run {
        println!("{}", serde_json::to_string_pretty(&cfg)?);
        return Ok(());
    }
    dir.write_config(&cfg)?;
    if let Some(Plan::Slurm) = a.plan {
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "tweedie".into());
        print!("{}", study::slurm_plan(&dir, &cfg, &exe));
        return Ok(());
    }
    let progress = Terminal::new();
    if let Some(k) = a.task {
        let runs = cfg.runs();
        let Some(&key) = runs.get(k) else {
            bail!(
                "--task {k}: the study has {} runs (0 to {})",
                runs.len(),
                runs.len() - 1
            );
        };
        let state = study::train_run(&dir, &cfg, key, &progress)?;
        let done = if state == RunState::Finished {
            "already finished"
        } else {
            "trained"
        };
        println!("{}: {done}", key.name());
        return Ok(());
    }
    let device = cfg.train.device.device()?;
    let record = if a.aggregate {
        study::aggregate(&dir, &cfg, &device, &progress)?
    } else {
        let todo = study::pending(&dir, &cfg);
        let jobs = a
            .jobs
            .unwrap_or_else(|| study::default_jobs(&cfg, todo.len()));
        eprintln!(
            "{} runs, {} to train, {jobs} at a time ({})",
            cfg.runs().len(),
            todo.len(),
            todo.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
        );
        let ctx = experiment::Context {
            device,
            progress: &progress,
            jobs: Some(jobs),
        };
        Generalization::run(&cfg, &dir, &ctx).with_context(|| {
            format!(
                "fix the cause and continue with: tweedie generalization --out {} --resume",
                dir.root().display()
            )
        })?
    };
    tweedie::report::study::write(&dir, &record)?;
    print!("{}", tweedie::report::study::summary(&record));
    println!(
        "(medians of correlations of mean-removed images, 95% bootstrap intervals over pairs and samples) wrote {}/study.json and report.html",
        dir.root().display()
    );
    Ok(())
}
