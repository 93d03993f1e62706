//! `tweedie eval`: PSNR/MSE vs σ on the run's training images and on held-out images, printed,
//! written to `eval.json`, plotted, and added to the run's report.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use tweedie::experiments::dir::Experiment;
use tweedie::experiments::eval::{self, Eval};
use tweedie::report::run as run_report;
use tweedie::train::record::RunDir;
use tweedie::train::Weights;
use tweedie::DeviceSpec;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Run folder (from `tweedie train` or `tweedie import`).
    #[arg(long)]
    run: PathBuf,
    /// Held-out data [default: the run's own source's test set; required for an imported
    /// network: its test set, or a seeded tenth of it when the source has none].
    #[arg(long)]
    data: Option<String>,
    /// Noise levels, comma-separated (0.1 or 25/255).
    #[arg(long, value_delimiter = ',', value_parser = super::sigma_arg, default_value = "5/255,15/255,25/255,50/255,100/255")]
    sigmas: Vec<f32>,
    /// Images evaluated from each of train and test.
    #[arg(long, default_value_t = 256)]
    count: usize,
    /// Also evaluate the exact MMSE denoiser of the data's synthetic family on the same noisy
    /// held-out images (Gaussian fields: the Wiener filter; read from the .json beside the .npy).
    #[arg(long)]
    optimum: bool,
    /// Which weights: the moving average when the run keeps one, or the last ones.
    #[arg(long, value_enum, default_value_t = Weights::Ema)]
    weights: Weights,
    /// Noise seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Device: auto, cpu, wgpu[:N], cuda[:N] or tch.
    #[arg(long, default_value = "auto")]
    device: DeviceSpec,
}

pub fn run(a: EvalArgs) -> Result<()> {
    let cfg = eval::Config {
        sigmas: a.sigmas,
        count: a.count,
        optimum: a.optimum,
        weights: a.weights,
        seed: a.seed,
        data: a.data,
    };
    let run = RunDir::new(&a.run);
    let done = eval::run(&cfg, &run, &a.device.device()?)?;
    let (record, n_train, n_test) = (&done.record, done.train_images, done.test_images);
    print!("{}", run_report::eval_summary(record, n_train, n_test));
    let eval_json = run.file(Eval::RECORD_FILE);
    if n_train == 0 {
        // an imported network: its page is its config and this record
        println!("wrote {}", eval_json.display());
        return Ok(());
    }
    run_report::write_examples(&done.examples, done.examples_per_row(), &run)?;
    run_report::write(&run)?;
    println!(
        "wrote {} and {}",
        eval_json.display(),
        run.file("report.html").display()
    );
    Ok(())
}
