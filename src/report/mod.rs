//! Figures and pages, drawn from the records a command leaves in its folder, never recomputed
//! ([`index::rebuild`] redraws any folder's):
//! one module per record kind — a training run ([`run`]), a benchmark ([`bench`](mod@bench), text only), a generalization study ([`study`]),
//! a Jacobian folder ([`jacobian`]), an optimality study ([`optimality`]), samples ([`samples`]), restorations ([`restore`]) — on top
//! of image grids ([`grid`]), line plots ([`plot`]) and pages ([`html`]). Nothing outside this
//! module draws.

pub mod bench;
pub mod grid;
pub mod html;
pub mod index;
pub mod jacobian;
pub mod optimality;
pub mod plot;
pub mod restore;
pub mod run;
pub mod samples;
pub mod study;

/// Errors of writing a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Reading the run or writing a page.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Writing a figure.
    #[error(transparent)]
    Figure(#[from] grid::FigureError),
    /// Reading an experiment's record.
    #[error(transparent)]
    Record(#[from] crate::experiments::dir::FolderError),
}
