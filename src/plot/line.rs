//! Line and scatter charts: solutions against x, errors and losses against iteration.

use std::path::Path;

use anyhow::{bail, Result};
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

use super::axis::{axis_range, tick, LogAxis};
use super::*;

/// Per drawable series: its index (fixes its palette colour) and its runs of valid points,
/// split at skipped points so lines break at gaps instead of bridging them.
type Runs<'a> = (usize, &'a Series<'a>, Vec<Vec<(f64, f64)>>);

struct LinePlan<'a> {
    axes: &'a Axes<'a>,
    series: Vec<Runs<'a>>,
    x: (f64, f64),
    y: (f64, f64),
    legend: bool,
    /// Data-free plot corner for the legend; `None` puts it outside, right of the plot.
    corner: Option<SeriesLabelPosition>,
}

/// A chart of u against x on linear axes (solutions of a run, or of several runs).
pub fn solution_chart(stem: &Path, title: &str, series: &[Series]) -> Result<()> {
    line_chart(
        stem,
        &Axes {
            title,
            x_label: "x",
            y_label: "u",
            log_x: false,
            log_y: false,
        },
        series,
    )
}

/// Writes `{stem}.svg` and `{stem}.png` (1000×650 px) — a line/scatter chart with a legend
/// (only if >1 series or a name is non-empty), distinct colours per series (a fixed palette),
/// axis labels, title, scientific tick labels on log axes (e.g. 1e-3).
pub fn line_chart(stem: &Path, axes: &Axes, series: &[Series]) -> Result<()> {
    let mut kept = Vec::new();
    for (idx, s) in series.iter().enumerate() {
        let mut runs: Vec<Vec<(f64, f64)>> = vec![vec![]];
        for (&x, &y) in s.x.iter().zip(s.y) {
            match runs.last_mut() {
                Some(run) if plottable(x, axes.log_x) && plottable(y, axes.log_y) => {
                    run.push((x, y))
                }
                Some(run) if !run.is_empty() => runs.push(vec![]),
                _ => {}
            }
        }
        runs.retain(|r| !r.is_empty());
        if !runs.is_empty() {
            kept.push((idx, s, runs));
        }
    }
    let pts = || kept.iter().flat_map(|p| p.2.iter().flatten());
    let Some(&(x0, y0)) = pts().next() else {
        bail!(
            "'{}': no point is finite (and > 0 on a log axis)",
            axes.title
        );
    };
    let fold = |(lo, hi): (f64, f64), v: f64| (lo.min(v), hi.max(v));
    let (xl, xh) = pts().map(|p| p.0).fold((x0, x0), fold);
    let (yl, yh) = pts().map(|p| p.1).fold((y0, y0), fold);
    let (x, y) = (
        axis_range(xl, xh, axes.log_x, 0.02),
        axis_range(yl, yh, axes.log_y, 0.04),
    );
    let legend = kept.len() > 1 || kept.iter().any(|p| !p.1.name.is_empty());
    let mut plan = LinePlan {
        axes,
        series: kept,
        x,
        y,
        legend,
        corner: None,
    };
    if legend {
        plan.corner = plan.legend_corner();
    }
    write_outputs(stem, &plan)
}

fn name(&(idx, s, _): &Runs) -> String {
    match s.name {
        "" => format!("series {}", idx + 1),
        n => n.to_string(),
    }
}

impl LinePlan<'_> {
    /// First plot corner where the (estimated) legend box covers no samples along the data, so
    /// the legend never hides data; a crowded plot gets `None` (legend outside).
    fn legend_corner(&self) -> Option<SeriesLabelPosition> {
        let chars = self.series.iter().map(|p| name(p).chars().count()).max();
        let bw = (chars.unwrap_or(0) as f64 * 9.0 + 80.0) / 850.0;
        let bh = (self.series.len() as f64 * 24.0 + 30.0) / 480.0;
        let norm = |v: f64, (lo, hi): (f64, f64), log: bool| match log {
            true => (v / lo).log10() / (hi / lo).log10(),
            false => (v - lo) / (hi - lo),
        };
        let (lx, ly) = (self.axes.log_x, self.axes.log_y);
        let mut samples = Vec::new();
        for run in self.series.iter().flat_map(|p| &p.2) {
            let at = |i: usize| (norm(run[i].0, self.x, lx), norm(run[i].1, self.y, ly));
            for i in 0..run.len() {
                let (a, b) = (at(i), at((i + 1).min(run.len() - 1)));
                let lerp = |t: f64| (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
                samples.extend((0..8).map(|k| lerp(k as f64 / 8.0)));
            }
        }
        let inside =
            |&(x, y): &(f64, f64), cx: f64, cy: f64| (x - cx).abs() <= bw && (y - cy).abs() <= bh;
        let free = |c: &(_, f64, f64)| !samples.iter().any(|s| inside(s, c.1, c.2));
        use SeriesLabelPosition::*;
        let corners = [
            (UpperRight, 1.0, 1.0),
            (UpperLeft, 0.0, 1.0),
            (LowerRight, 1.0, 0.0),
        ];
        let mut corners = corners.into_iter().chain([(LowerLeft, 0.0, 0.0)]);
        corners.find(free).map(|c| c.0)
    }

    fn draw<DB, X, Y>(&self, root: &DrawingArea<DB, Shift>, xc: X, yc: Y) -> Result<()>
    where
        DB: DrawingBackend,
        DB::ErrorType: 'static,
        X: Ranged<ValueType = f64> + ValueFormatter<f64>,
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        root.fill(&WHITE)?;
        let area = root
            .margin(20, 0, 0, 0)
            .titled(self.axes.title, (FONT, 26))?;
        let mut side = 0; // room right of the plot for an outside legend
        if self.legend && self.corner.is_none() {
            let font = (FONT, 16).into_text_style(root);
            for p in &self.series {
                side = side.max(root.estimate_text_size(&name(p), &font)?.0 + 80);
            }
        }
        let (main, side) = area.split_horizontally(SIZE.0 - side);
        let mut chart = ChartBuilder::on(&main)
            .margin(20)
            .margin_top(10)
            .x_label_area_size(55)
            .y_label_area_size(80)
            .build_cartesian_2d(xc, yc)?;
        let xf = |v: &f64| tick(*v, self.axes.log_x, self.x);
        let yf = |v: &f64| tick(*v, self.axes.log_y, self.y);
        chart
            .configure_mesh()
            .x_desc(self.axes.x_label)
            .y_desc(self.axes.y_label)
            .x_label_formatter(&xf)
            .y_label_formatter(&yf)
            .label_style((FONT, 16))
            .axis_desc_style((FONT, 20))
            .bold_line_style(RGBColor(225, 225, 225))
            .light_line_style(WHITE)
            .draw()?;
        for (idx, series, runs) in &self.series {
            let (colour, style) = (rgb(PALETTE[idx % PALETTE.len()]), series.style);
            let stroke = colour.stroke_width(2);
            for run in runs {
                let line = run.iter().copied();
                match style {
                    SeriesStyle::Line | SeriesStyle::LinePoints if run.len() > 1 => {
                        chart.draw_series(LineSeries::new(line, stroke))?;
                    }
                    SeriesStyle::Dashed if run.len() > 1 => {
                        chart.draw_series(DashedLineSeries::new(line, 10, 6, stroke))?;
                    }
                    _ => {}
                }
                // Isolated points of a line series get a marker so they don't vanish.
                if matches!(style, SeriesStyle::Points | SeriesStyle::LinePoints) || run.len() == 1
                {
                    chart.draw_series(run.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
                }
            }
        }
        match (self.legend, &self.corner) {
            (false, _) => Ok(()),
            (true, Some(corner)) => self.draw_legend(&mut chart, corner.clone()),
            (true, None) => {
                // plotters clips legends to the plot area, so an outside one gets its own chart.
                let mut legend = ChartBuilder::on(&side)
                    .margin_top(10)
                    .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
                self.draw_legend(&mut legend, SeriesLabelPosition::UpperLeft)
            }
        }
    }

    fn draw_legend<'a, DB, CT>(
        &self,
        chart: &mut ChartContext<'a, DB, CT>,
        pos: SeriesLabelPosition,
    ) -> Result<()>
    where
        DB: DrawingBackend + 'a,
        DB::ErrorType: 'static,
        CT: CoordTranslate,
    {
        for p @ (idx, series, _) in &self.series {
            let (colour, style) = (rgb(PALETTE[idx % PALETTE.len()]), series.style);
            // The legend closure must return one type for every style, so unused parts
            // (line halves, dot) are drawn fully transparent instead.
            let (gap, radius) = match style {
                SeriesStyle::Line => (0, 0),
                SeriesStyle::Points => (12, 3),
                SeriesStyle::LinePoints => (0, 3),
                SeriesStyle::Dashed => (3, 0),
            };
            let line = colour.mix(f64::from(u8::from(gap < 12))).stroke_width(2);
            let dot = colour.mix(f64::from(u8::from(radius > 0))).filled();
            let glyph = move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(-12, 0), (-gap, 0)], line)
                    + PathElement::new(vec![(gap, 0), (12, 0)], line)
                    + Circle::new((0, 0), radius, dot)
            };
            let none = std::iter::empty::<EmptyElement<CT::From, DB>>();
            chart.draw_series(none)?.label(name(p)).legend(glyph);
        }
        chart
            .configure_series_labels()
            .position(pos)
            .margin(12)
            .label_font((FONT, 16))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(170, 170, 170))
            .draw()?;
        Ok(())
    }
}

impl Render for LinePlan<'_> {
    fn render<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let ((x0, x1), (y0, y1)) = (self.x, self.y);
        let lin = |a: f64, b: f64| RangedCoordf64::from(a..b);
        let log = LogAxis::new;
        match (self.axes.log_x, self.axes.log_y) {
            (false, false) => self.draw(root, lin(x0, x1), lin(y0, y1)),
            (true, false) => self.draw(root, log(x0, x1), lin(y0, y1)),
            (false, true) => self.draw(root, lin(x0, x1), log(y0, y1)),
            (true, true) => self.draw(root, log(x0, x1), log(y0, y1)),
        }
    }
}
