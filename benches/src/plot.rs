//! Plot pieces the benchmark binaries share (plotters, bitmap backend).

use plotters::coord::CoordTranslate;
use plotters::prelude::*;

/// A plot's error: plotters' drawing errors and file reads alike.
pub type PlotError = Box<dyn std::error::Error>;

/// Registers Debian's DejaVu Sans (fonts-dejavu-core) as "sans-serif": ab_glyph draws
/// text from a font file, and plotters has none of its own.
pub fn register_sans_font() -> Result<(), PlotError> {
    let font = std::fs::read("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")?;
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(font.into_boxed_slice()),
    )
    .map_err(|_| "unusable font")?;
    Ok(())
}

/// The legend swatch of a line series in `color`.
pub fn line_swatch(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color)
}

/// Draws `chart`'s series labels at `position`, on a white, framed box.
pub fn draw_legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), PlotError>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(position)
        .draw()?;
    Ok(())
}
