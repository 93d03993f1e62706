//! `tweedie generalization`: the paper's central experiment as one resumable command.

use super::progress::Terminal;
use super::sample::{AscentArgs, Sampler};
use super::train::TrainArgs;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use tweedie::experiments::generalization::{
    self as study, RunState, StudyConfig, StudyDir, StudySampler,
};
use tweedie::sampling::euler::EulerParams;

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Plan {
    /// A Slurm job-array script on stdout (one task per run, then an aggregate step).
    Slurm,
}

#[derive(Args, Debug)]
pub struct GeneralizationArgs {
    /// Training-set sizes N, comma-separated.
    #[arg(long, default_value = "1,10,100,1000")]
    sizes: String,
    /// Paired samples per network.
    #[arg(long, default_value_t = 64)]
    samples: usize,
    /// Noise levels of the PSNR and model-variance measurements.
    #[arg(long, default_value = "15/255,50/255,100/255")]
    eval_sigmas: String,
    /// Images used for PSNR and model variance.
    #[arg(long, default_value_t = 256)]
    eval_count: usize,
    /// Sampler of the paired samples.
    #[arg(long, value_enum, default_value_t = Sampler::Ascent)]
    sampler: Sampler,
    #[command(flatten)]
    ascent: AscentArgs,
    /// Euler sampler: number of steps (from --sigma0 down to --sigma-final).
    #[arg(long, default_value_t = 100)]
    euler_steps: usize,
    /// Print a cluster plan instead of running.
    #[arg(long, value_enum)]
    plan: Option<Plan>,
    /// Train only run K of the sweep (0-based; used by the Slurm array) and exit.
    #[arg(long)]
    task: Option<usize>,
    /// Skip training; measure a study whose runs are all finished.
    #[arg(long)]
    aggregate: bool,
    /// Runs trained at once (each uses the machine's cores through burn's thread pool).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Training options, as for `tweedie train` (--out is the study folder; --train-size and
    /// --split are set per run; --resume continues the study: finished runs are skipped, broken
    /// ones resumed or redone).
    #[command(flatten)]
    train: TrainArgs,
}

pub fn run(a: GeneralizationArgs) -> Result<()> {
    let dir = StudyDir::new(&a.train.out);
    let resuming = a.train.resume || a.task.is_some() || a.aggregate;
    let cfg = if resuming && dir.config().exists() {
        let text = std::fs::read_to_string(dir.config())
            .with_context(|| format!("reading {}", dir.config().display()))?;
        let mut cfg: StudyConfig = serde_json::from_str(&text)
            .with_context(|| format!("parsing {}", dir.config().display()))?;
        cfg.train.device = a.train.device;
        cfg
    } else {
        if resuming {
            bail!(
                "{} holds no study yet: start it with --data and --sizes",
                dir.root().display()
            );
        }
        let mut template = a.train.fresh_config()?;
        template.data.split.train_size = None;
        let cfg = StudyConfig {
            sizes: a
                .sizes
                .split(',')
                .map(|s| s.trim().parse::<usize>())
                .collect::<Result<_, _>>()
                .with_context(|| {
                    format!("--sizes `{}`: expected numbers like 1,10,100", a.sizes)
                })?,
            samples: a.samples,
            sampler: match a.sampler {
                Sampler::Ascent => StudySampler::Ascent(a.ascent.params(64)),
                Sampler::Euler => StudySampler::Euler(EulerParams {
                    sigma_max: a.ascent.sigma0,
                    sigma_min: a.ascent.sigma_final,
                    steps: a.euler_steps,
                    init_mean: 0.5,
                    batch: 64,
                }),
            },
            eval_sigmas: super::parse_sigmas(&a.eval_sigmas)?,
            eval_count: a.eval_count,
            seed: a.train.seed,
            train: template,
        };
        if dir.config().exists() {
            let old: StudyConfig = serde_json::from_str(&std::fs::read_to_string(dir.config())?)?;
            if old != cfg {
                bail!(
                    "{} holds a study with other settings; pass --resume to continue it or choose another --out",
                    dir.root().display()
                );
            }
        }
        cfg
    };
    cfg.validate()?;
    // the largest N must fit twice in the pool: check before anything trains
    let largest = cfg
        .runs()
        .last()
        .copied()
        .expect("validated: sizes non-empty");
    cfg.run_config(largest).data.resolve()?;

    if let Some(Plan::Slurm) = a.plan {
        write_config(&dir, &cfg)?;
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "tweedie".into());
        print!("{}", study::slurm_plan(&dir, &cfg, &exe));
        return Ok(());
    }
    if a.train.dry_run {
        println!("{}", serde_json::to_string_pretty(&cfg)?);
        return Ok(());
    }
    write_config(&dir, &cfg)?;
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
        println!(
            "{}: {}",
            key.name(),
            if state == RunState::Finished {
                "already finished"
            } else {
                "trained"
            }
        );
        return Ok(());
    }
    if !a.aggregate {
        let todo = study::pending(&dir, &cfg);
        eprintln!(
            "{} runs, {} to train ({})",
            cfg.runs().len(),
            todo.len(),
            todo.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
        );
        let failures = study::train_all(&dir, &cfg, a.jobs, &progress);
        if !failures.is_empty() {
            for (k, e) in &failures {
                eprintln!("run {} failed: {e}", k.name());
            }
            bail!(
                "{} run(s) failed; fix the cause and continue with: tweedie generalization --out {} --resume",
                failures.len(),
                dir.root().display()
            );
        }
    }
    let device = cfg.train.device.device()?;
    let report = study::aggregate(&dir, &cfg, &device, &progress)?;
    println!(
        "{:>8} {:>12} {:>14} {:>14} {:>14}",
        "N", "a↔b", "↔nearest S₁", "↔nearest S₂", "empirical a↔b"
    );
    for s in &report.sizes {
        println!(
            "{:>8} {:>12.3} {:>14.3} {:>14.3} {:>14.3}",
            s.n,
            s.network.median_paired_similarity,
            s.network.nearest_a.median_own_similarity,
            s.network.nearest_a.median_other_similarity,
            s.empirical_optimal.median_paired_similarity
        );
    }
    println!(
        "(median correlations of mean-removed images) wrote {}/study.json and report.html",
        dir.root().display()
    );
    Ok(())
}

fn write_config(dir: &StudyDir, cfg: &StudyConfig) -> Result<()> {
    tweedie::io::write_json(&dir.config(), cfg)
        .with_context(|| format!("writing {}", dir.config().display()))
}
