//! Subcommands (verbs) and their flags. Raw flags become validated library configurations before
//! any work starts (STYLE.md §10).

mod bench;
mod data;
mod demo;
mod denoise;
mod doc_lines;
mod errors;
mod eval;
mod generalization;
mod import;
mod jacobian;
mod operator;
mod optimality;
mod progress;
mod recipe;
mod report;
mod restore;
mod sample;
mod sampler;
mod train;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

/// `--size`: `H` (square) or `HxW`, each 1 to 4096.
fn image_size_arg(s: &str) -> Result<[usize; 2], String> {
    let parse = |v: &str| match v.trim().parse::<usize>() {
        Ok(n) if (1..=4096).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?}: give H or HxW, sides from 1 to 4096 (e.g. 64 or 48x64)"
        )),
    };
    match s.split_once(['x', 'X', '×']) {
        Some((h, w)) => Ok([parse(h)?, parse(w)?]),
        None => parse(s).map(|n| [n, n]),
    }
}

/// Bias-free denoisers as generative models: train, evaluate, denoise, sample, restore, and
/// open the Jacobian.
#[derive(Parser, Debug)]
#[command(name = "tweedie", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate or inspect data sets.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Train a blind bias-free denoiser; writes a run folder.
    Train(train::TrainArgs),
    /// PSNR/MSE vs σ of a trained run on its training split and the test split.
    Eval(eval::EvalArgs),
    /// Turn a PyTorch checkpoint of a bias-free denoiser into a run folder every command takes.
    Import(import::ImportArgs),
    /// Denoise one image or a folder with a trained run.
    Denoise(denoise::DenoiseArgs),
    /// Draw samples from a trained denoiser's implicit prior.
    Sample(sample::SampleArgs),
    /// Solve a linear inverse problem (inpainting, super-resolution, …) with the learned prior.
    Restore(restore::RestoreArgs),
    /// The memorization → generalization study: pairs of networks on disjoint sets over N.
    Generalization(generalization::GeneralizationArgs),
    /// Jacobian of the denoiser at a noisy image: eigenvalues, GAHB eigenvectors, tr J.
    Jacobian(jacobian::JacobianArgs),
    /// Networks against the optimum where it is known: Gaussian fields (Wiener), C^α rates,
    /// disks (numerical MMSE), and a shuffled-pixel control.
    Optimality(optimality::OptimalityArgs),
    /// Redraw the HTML of any folder the tool writes (run, study, Jacobian, optimality, demo, or
    /// a folder holding several) from its JSON records.
    Report(report::ReportArgs),
    /// The paper's finding at CPU size: networks on small disjoint sets memorize, on large ones
    /// they generalize; ends with OUT/index.html.
    Demo(demo::DemoArgs),
    /// Speed of the 7.6 M-parameter BF-UNet: training, eval and VJP images per second.
    Bench(bench::BenchArgs),
}

/// Parses the command line and runs the subcommand.
pub fn run() -> Result<()> {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data(c) => data::run(c),
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Import(a) => import::run(a),
        Command::Denoise(a) => denoise::run(a),
        Command::Sample(a) => sample::run(a),
        Command::Restore(a) => restore::run(a),
        Command::Jacobian(a) => jacobian::run(a),
        Command::Generalization(a) => generalization::run(a),
        Command::Optimality(a) => optimality::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Report(a) => report::run(a),
        Command::Bench(a) => bench::run(a),
    };
    result.map_err(errors::name_the_flag)
}

/// Parses a noise level: a number (`0.1`) or a fraction on the 8-bit scale (`25/255`).
pub fn parse_sigma(s: &str) -> Result<f32> {
    let v = match s.split_once('/') {
        Some((a, b)) => {
            let (a, b): (f64, f64) = (a.trim().parse()?, b.trim().parse()?);
            if b == 0.0 {
                bail!("noise level `{s}` divides by zero");
            }
            a / b
        }
        None => s.trim().parse::<f64>()?,
    };
    if !(v.is_finite() && v >= 0.0) {
        bail!("noise level `{s}` must be a non-negative number such as 0.1 or 25/255");
    }
    Ok(v as f32)
}

/// clap value parser for a single σ.
pub fn sigma_arg(s: &str) -> std::result::Result<f32, String> {
    parse_sigma(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmas_parse_fractions_and_reject_nonsense() {
        assert!((parse_sigma("25/255").unwrap() - 25.0 / 255.0).abs() < 1e-7);
        assert!(parse_sigma("-1").is_err());
        assert!(parse_sigma("1/0").is_err());
        assert!(sigma_arg("abc").is_err());
    }
}
