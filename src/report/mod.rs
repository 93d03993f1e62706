//! Figures and pages: image grids ([`grid`]), line plots ([`plot`]), `report.html` ([`html`]).
//! Nothing below this module draws.

pub mod grid;
pub mod html;
pub mod jacobian;
pub mod plot;
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
}
