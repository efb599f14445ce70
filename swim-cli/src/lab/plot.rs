//! Draws a [`Chart`] as an SVG file (plotters' SVG backend: no fonts or
//! native libraries needed, text is left to the viewer).

use std::path::Path;

use plotters::prelude::*;

use lapswim_sim::chart::Chart;

/// Size of the drawing, in SVG pixels.
const SIZE: (u32, u32) = (960, 540);

/// Writes `chart` to `path` as SVG.
pub fn svg(chart: &Chart, path: &Path) -> Result<(), String> {
    draw(chart, path).map_err(|e| format!("cannot draw {}: {e}", path.display()))
}

fn draw(chart: &Chart, path: &Path) -> Result<(), Box<dyn core::error::Error>> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let points = || chart.series.iter().flat_map(|s| s.points.iter().copied());
    let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
    for (x, y) in points() {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    // Room above the highest point, and a non-empty range.
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let y1 = if y1 > 0.0 { y1 * 1.05 } else { 1.0 };
    let mut c = ChartBuilder::on(&root)
        .caption(&chart.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x0.min(0.0)..x1, 0.0..y1)?;
    c.configure_mesh().x_desc(&chart.x_label).y_desc(&chart.y_label).draw()?;
    for (k, s) in chart.series.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        c.draw_series(LineSeries::new(s.points.iter().copied(), color.stroke_width(2)))?
            .label(s.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2)));
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_becomes_an_svg_with_its_title_and_one_line_per_series() {
        let chart = Chart::new("title here", "x", "y")
            .line("up", vec![(0.0, 0.0), (1.0, 2.0)])
            .line("flat", vec![(0.0, 1.0), (1.0, 1.0)]);
        let path = std::env::temp_dir().join(format!("swim-plot-{}.svg", std::process::id()));
        svg(&chart, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(text.starts_with("<svg"), "{}", &text[..40.min(text.len())]);
        assert!(text.contains("title here") && text.contains("flat"));
        assert!(text.matches("<polyline").count() >= 2, "one line per series");
    }

    #[test]
    fn an_empty_chart_still_draws() {
        let path = std::env::temp_dir().join(format!("swim-plot-empty-{}.svg", std::process::id()));
        svg(&Chart::new("nothing", "x", "y"), &path).unwrap();
        let _ = std::fs::remove_file(&path);
    }
}
