//! The inverse problem of `tweedie restore` chosen by flags, as the library's
//! [`Task`](OpTask) (which builds the measurement operator).

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use tweedie::data::{load_image, FolderOptions};
use tweedie::sampling::operators::Task as OpTask;

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Task {
    /// Fill a missing box (--mask-box) or the black pixels of --mask.
    Inpaint,
    /// A random --fraction of pixels is missing.
    RandomPixels,
    /// Super-resolution from --factor × --factor block averages.
    Superres,
    /// Compressive sensing: --fraction of D random orthonormal projections.
    Cs,
    /// Deblurring: only Fourier coefficients with |f| ≤ --cutoff cycles/image are known.
    Deblur,
}

/// The inverse problem and its parameters.
#[derive(Args, Debug)]
pub struct OperatorArgs {
    /// The inverse problem.
    #[arg(long, value_enum)]
    task: Task,
    /// Inpainting box: top,left,height,width in pixels.
    #[arg(long, value_delimiter = ',')]
    mask_box: Option<Vec<usize>>,
    /// Inpainting mask image: white = known, black = missing.
    #[arg(long)]
    mask: Option<PathBuf>,
    /// Random pixels: fraction missing; compressive sensing: fraction measured.
    #[arg(long, default_value_t = 0.5)]
    fraction: f64,
    /// Super-resolution factor (2, 4, 8).
    #[arg(long, default_value_t = 4)]
    factor: usize,
    /// Deblurring: frequency cutoff in cycles per image.
    #[arg(long, default_value_t = 4.0)]
    cutoff: f64,
}

impl OperatorArgs {
    /// The inverse problem the flags describe (a mask image read here).
    pub fn task(&self) -> Result<OpTask> {
        Ok(match self.task {
            Task::Inpaint => match (&self.mask_box, &self.mask) {
                (Some(b), None) => {
                    let [top, left, height, width] = b[..] else {
                        bail!("--mask-box {b:?}: expected four numbers top,left,height,width");
                    };
                    OpTask::InpaintBox {
                        top,
                        left,
                        height,
                        width,
                    }
                }
                (None, Some(p)) => {
                    let options = FolderOptions {
                        gray: true,
                        size: None,
                    };
                    let m = load_image(p, options)?;
                    let [_, _, h, w] = m.shape();
                    OpTask::InpaintMask {
                        known: m.as_slice().iter().map(|v| *v > 0.5).collect(),
                        size: [h, w],
                        name: p.display().to_string(),
                    }
                }
                _ => bail!("inpainting needs exactly one of --mask-box or --mask"),
            },
            Task::RandomPixels => OpTask::RandomPixels {
                fraction: self.fraction,
            },
            Task::Superres => OpTask::Superres {
                factor: self.factor,
            },
            Task::Cs => OpTask::Cs {
                fraction: self.fraction,
            },
            Task::Deblur => OpTask::Deblur {
                cutoff: self.cutoff,
            },
        })
    }
}
