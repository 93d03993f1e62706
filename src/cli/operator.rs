//! The measurement operator of `tweedie restore`: the inverse problem chosen by flags, built as a
//! library [`Measurement`].

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use tweedie::data::{load_image, FolderOptions};
use tweedie::sampling::operators::{BlockAverage, LowPass, Mask, Measurement, RandomProjection};

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
    /// The operator for `shape` images; random masks and projections drawn from `seed`.
    pub fn build(&self, shape: [usize; 3], seed: u64) -> Result<Box<dyn Measurement>> {
        let [c, h, w] = shape;
        Ok(match self.task {
            Task::Inpaint => match (&self.mask_box, &self.mask) {
                (Some(b), None) => {
                    let [top, left, bh, bw] = b[..] else {
                        bail!("--mask-box {b:?}: expected four numbers top,left,height,width");
                    };
                    if top + bh > h || left + bw > w || bh == 0 || bw == 0 {
                        bail!("--mask-box {b:?} does not fit in {h}×{w} images");
                    }
                    Box::new(Mask::box_hole(shape, top, left, bh, bw))
                }
                (None, Some(p)) => {
                    let m = load_image(
                        p,
                        FolderOptions {
                            gray: true,
                            size: None,
                        },
                    )?;
                    if m.shape()[2..] != [h, w] {
                        bail!(
                            "{}: mask is {:?} but images are {h}×{w}",
                            p.display(),
                            &m.shape()[2..]
                        );
                    }
                    let keep = (0..c * h * w)
                        .map(|i| m.as_slice()[i % (h * w)] > 0.5)
                        .collect();
                    Box::new(Mask::new(
                        keep,
                        format!("inpainting with mask {}", p.display()),
                    ))
                }
                _ => bail!("inpainting needs exactly one of --mask-box or --mask"),
            },
            Task::RandomPixels => Box::new(Mask::random_pixels(shape, self.fraction, seed)?),
            Task::Superres => Box::new(BlockAverage::new(shape, self.factor)?),
            Task::Cs => Box::new(RandomProjection::new(c * h * w, self.fraction, seed)?),
            Task::Deblur => Box::new(LowPass::new(shape, self.cutoff)?),
        })
    }
}
