//! Line plots (PSNR vs σ, loss curves, spectra) as PNG, with plotters. The font is embedded
//! (DejaVu Sans, see `assets/`), so plots render the same on any machine without fontconfig.

use super::grid::FigureError;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSans.ttf");
        // Failure means plots lose their text, never their data: nothing to report upward.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

/// One curve.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points (x, y); non-finite points are skipped.
    pub points: Vec<(f64, f64)>,
}

/// Axis scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// Linear.
    Linear,
    /// Base-10 logarithmic (positive values only).
    Log,
}

/// A line plot's labels and scales.
#[derive(Clone, Debug)]
pub struct LinePlot {
    /// Title above the plot.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// x scale.
    pub x_scale: Scale,
    /// y scale.
    pub y_scale: Scale,
}

fn range(values: impl Iterator<Item = f64>, scale: Scale) -> (f64, f64) {
    let vals: Vec<f64> = values
        .filter(|v| v.is_finite() && (scale == Scale::Linear || *v > 0.0))
        .collect();
    let lo = vals.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    match scale {
        Scale::Linear => {
            let pad = ((hi - lo) * 0.05).max(1e-9);
            (lo - pad, hi + pad)
        }
        Scale::Log => (lo / 1.2, hi * 1.2),
    }
}

/// A short tick label: 3 significant digits, scientific notation for very small or large values.
fn tick(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Draws `series` and writes a PNG of 800×560 pixels, atomically.
pub fn save_line_plot(plot: &LinePlot, series: &[Series], path: &Path) -> Result<(), FigureError> {
    save_interval_plot(plot, series, &[], path)
}

/// An interval drawn as a vertical bar: (x, lo, hi).
pub type Bar = (f64, f64, f64);

/// [`save_line_plot`] with interval bars: `bars[i]` are drawn in series i's colour (a series
/// without bars may have none).
pub fn save_interval_plot(
    plot: &LinePlot,
    series: &[Series],
    bars: &[Vec<Bar>],
    path: &Path,
) -> Result<(), FigureError> {
    register_font();
    let (w, h) = (800u32, 560u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    let err = |e: &dyn std::fmt::Display| FigureError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let all = || series.iter().flat_map(|s| s.points.iter());
        let ends = || {
            bars.iter()
                .flatten()
                .flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)])
        };
        let (x0, x1) = range(all().map(|p| p.0), plot.x_scale);
        let (y0, y1) = range(all().copied().chain(ends()).map(|p| p.1), plot.y_scale);
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(&plot.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64);
        // plotters types its chart by coordinate kind, so each scale pair is its own branch
        macro_rules! draw {
            ($xr:expr, $yr:expr) => {{
                let mut chart = builder.build_cartesian_2d($xr, $yr).map_err(|e| err(&e))?;
                chart
                    .configure_mesh()
                    .x_desc(plot.x_label.as_str())
                    .y_desc(plot.y_label.as_str())
                    .label_style(("sans-serif", 14))
                    .x_label_formatter(&|v: &f64| tick(*v))
                    .y_label_formatter(&|v: &f64| tick(*v))
                    .draw()
                    .map_err(|e| err(&e))?;
                for (i, s) in series.iter().enumerate() {
                    let color = Palette99::pick(i).stroke_width(2);
                    let pts: Vec<(f64, f64)> = s
                        .points
                        .iter()
                        .cloned()
                        .filter(|(x, y)| x.is_finite() && y.is_finite())
                        .collect();
                    chart
                        .draw_series(LineSeries::new(pts.clone(), color))
                        .map_err(|e| err(&e))?
                        .label(s.label.as_str())
                        .legend(move |(x, y)| {
                            PathElement::new(
                                vec![(x, y), (x + 18, y)],
                                Palette99::pick(i).stroke_width(2),
                            )
                        });
                    chart
                        .draw_series(
                            pts.iter()
                                .map(|p| Circle::new(*p, 3, Palette99::pick(i).filled())),
                        )
                        .map_err(|e| err(&e))?;
                    let shown = bars.get(i).into_iter().flatten().filter(|(x, lo, hi)| {
                        [x, lo, hi].iter().all(|v| v.is_finite())
                            && (plot.y_scale == Scale::Linear || *lo > 0.0)
                    });
                    chart
                        .draw_series(shown.map(|&(x, lo, hi)| {
                            PathElement::new(
                                vec![(x, lo), (x, hi)],
                                Palette99::pick(i).stroke_width(2),
                            )
                        }))
                        .map_err(|e| err(&e))?;
                }
                if series.len() > 1 {
                    chart
                        .configure_series_labels()
                        .background_style(WHITE.mix(0.8))
                        .border_style(BLACK)
                        .label_font(("sans-serif", 14))
                        .draw()
                        .map_err(|e| err(&e))?;
                }
            }};
        }
        match (plot.x_scale, plot.y_scale) {
            (Scale::Linear, Scale::Linear) => draw!(x0..x1, y0..y1),
            (Scale::Log, Scale::Linear) => draw!((x0..x1).log_scale(), y0..y1),
            (Scale::Linear, Scale::Log) => draw!(x0..x1, (y0..y1).log_scale()),
            (Scale::Log, Scale::Log) => draw!((x0..x1).log_scale(), (y0..y1).log_scale()),
        }
        root.present().map_err(|e| err(&e))?;
    }
    let img = image::RgbImage::from_raw(w, h, buf).expect("buffer size");
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| err(&e))?;
    crate::io::write_atomic(path, out.get_ref()).map_err(|e| err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png_with_ink() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.png");
        let plot = LinePlot {
            title: "PSNR".into(),
            x_label: "σ".into(),
            y_label: "dB".into(),
            x_scale: Scale::Log,
            y_scale: Scale::Linear,
        };
        let s = Series {
            label: "test".into(),
            points: vec![(0.02, 30.0), (0.1, 25.0), (0.4, 18.0)],
        };
        save_line_plot(&plot, &[s.clone(), s], &p).unwrap();
        let img = image::open(&p).unwrap().to_rgb8();
        assert_eq!(img.width(), 800);
        let dark = img
            .pixels()
            .filter(|px| px.0.iter().all(|&c| c < 100))
            .count();
        assert!(dark > 500, "only {dark} dark pixels: nothing was drawn");
    }
}
