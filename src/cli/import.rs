//! `tweedie import`: a PyTorch checkpoint of a bias-free denoiser becomes a run folder
//! (`model.safetensors` + `config.json` naming its source) that every command takes.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use tweedie::nn::checkpoint::save_weights;
use tweedie::nn::import::{import, Output, SourceArch};
use tweedie::nn::Arch;
use tweedie::train::record::{ImportRecord, RunDir};

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The checkpoint (.pt / .pth; torch.save's zip archive or the older pickle stream).
    checkpoint: PathBuf,
    /// The architecture as its repository defines it (see docs/import.md).
    #[arg(long, value_enum)]
    arch: SourceArch,
    /// The run folder to write (must not exist, or hold an earlier import: it is replaced).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: ImportArgs) -> Result<()> {
    let run = RunDir::new(&a.out);
    if run.root().exists() {
        let earlier = run.read_config::<ImportRecord>().is_ok();
        let empty = std::fs::read_dir(run.root()).is_ok_and(|mut d| d.next().is_none());
        if !earlier && !empty {
            bail!(
                "{} exists and is not an imported network; choose another --out",
                run.root().display()
            );
        }
    }
    // read before anything is created: a checkpoint that does not import leaves no folder
    let imported = import(&a.checkpoint, a.arch, &burn::tensor::Device::flex())?;
    let _lock = tweedie::lock::FolderLock::acquire(run.root())?;
    let record = ImportRecord {
        imported: imported.source,
        num_params: imported.net.param_count(),
        net: imported.config,
        tweedie_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    std::fs::create_dir_all(run.root())
        .with_context(|| format!("creating {}", run.root().display()))?;
    save_weights(&imported.net, &record.net, &run.model())?;
    run.write_config(&record)
        .with_context(|| format!("writing {}", run.config().display()))?;
    let src = &record.imported;
    let net = &record.net;
    let shape = match net.arch {
        Arch::BfCnn => format!("{}-layer BF-CNN, {} channels", net.layers, net.channels),
        Arch::BfUnet => format!("BF-UNet {} × {}", net.blocks, net.channels),
        Arch::BfUnet2020 => "the 2020 UNet (32 and 64 channels)".to_string(),
    };
    println!(
        "{} ({:?}, {}) → {}: {shape}, {} image channel(s), {} parameters; its forward returns {}",
        src.file,
        src.container,
        &src.sha256[..12],
        run.root().display(),
        net.image_channels,
        record.num_params,
        match src.output {
            Output::Residual => "the noise (as ours does)",
            Output::Denoised => "the denoised image (tweedie's network is y minus it)",
        }
    );
    Ok(())
}
