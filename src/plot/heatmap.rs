//! Heatmaps with a colour bar (the error spectrum over training, Fig. 1).

use std::path::Path;

use anyhow::{ensure, Result};
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::axis::{axis_range, tick, viridis, LogAxis};
use super::*;

/// `(index, lo, hi)` cell edges around each finite centre, midway between sorted neighbours,
/// so non-uniform grids (e.g. log-spaced frequencies) tile without gaps or overlaps.
fn cell_edges(centres: &[f64]) -> Vec<(usize, f64, f64)> {
    let mut idx: Vec<usize> = (0..centres.len())
        .filter(|&i| plottable(centres[i], false))
        .collect();
    idx.sort_by(|&a, &b| centres[a].total_cmp(&centres[b]));
    let c: Vec<f64> = idx.iter().map(|&i| centres[i]).collect();
    let mut e: Vec<f64> = c.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect();
    let n = c.len();
    let (first, last) = match n {
        0 => return vec![],
        1 => (c[0] - 0.5, c[0] + 0.5),
        _ => (2.0 * c[0] - e[0], 2.0 * c[n - 1] - e[n - 2]),
    };
    e.insert(0, first);
    e.push(last);
    idx.iter()
        .enumerate()
        .map(|(k, &i)| (i, e[k], e[k + 1]))
        .collect()
}

struct HeatPlan<'a> {
    /// Title, x label, y label.
    text: [&'a str; 3],
    /// `(x0, x1, y0, y1, colour value)`; the value is log10 when `log`, -inf for non-positive.
    cells: Vec<(f64, f64, f64, f64, f64)>,
    x: (f64, f64),
    y: (f64, f64),
    c: (f64, f64),
    log: bool,
}

/// Heatmap: `values[i][j]` at x = xs[i] (e.g. iteration) and y = ys[j] (e.g. frequency),
/// colour = log10(value) when log_colour (non-positive → lowest colour), viridis-like colormap,
/// a colour bar with labels on the right. Writes {stem}.svg and {stem}.png.
#[allow(clippy::too_many_arguments)] // the signature is the module's agreed public API
pub fn heatmap(
    stem: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    xs: &[f64],
    ys: &[f64],
    values: &[Vec<f64>],
    log_colour: bool,
) -> Result<()> {
    let (xe, ye) = (cell_edges(xs), cell_edges(ys));
    let mut cells = Vec::new();
    for &(i, x0, x1) in &xe {
        for &(j, y0, y1) in &ye {
            let v = values.get(i).and_then(|row| row.get(j)).copied();
            let c = match (log_colour, v.unwrap_or(f64::NAN)) {
                (_, v) if !plottable(v, false) || (log_colour && v > LOG_MAX) => continue,
                (true, v) if !plottable(v, true) => f64::NEG_INFINITY, // lowest colour
                (true, v) => v.log10(),
                (false, v) => v,
            };
            cells.push((x0, x1, y0, y1, c));
        }
    }
    ensure!(
        !cells.is_empty(),
        "heatmap '{title}': no finite values on a finite grid"
    );
    let finite = cells.iter().map(|c| c.4).filter(|c| c.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
        (l.min(v), h.max(v))
    });
    let c = match (lo <= hi, log_colour) {
        (false, _) => (-1.0, 0.0), // only non-positive values: all get the lowest colour
        (true, false) => axis_range(lo, hi, false, 0.0),
        (true, true) => {
            let (l, h) = axis_range(10f64.powf(lo), 10f64.powf(hi), true, 0.0);
            (l.log10(), h.log10())
        }
    };
    let span = |e: &[(usize, f64, f64)]| (e[0].1, e[e.len() - 1].2);
    let (x, y, text) = (span(&xe), span(&ye), [title, x_label, y_label]);
    write_outputs(
        stem,
        &HeatPlan {
            text,
            cells,
            x,
            y,
            c,
            log: log_colour,
        },
    )
}

impl HeatPlan<'_> {
    fn colour_bar<DB, Y>(&self, area: &DrawingArea<DB, Shift>, yc: Y) -> Result<()>
    where
        DB: DrawingBackend,
        DB::ErrorType: 'static,
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let mut bar = ChartBuilder::on(area)
            .margin_top(10)
            .margin_bottom(20)
            .margin_left(5)
            .margin_right(15)
            .x_label_area_size(55)
            .right_y_label_area_size(80)
            .build_cartesian_2d(0.0..1.0, yc)?;
        let yf = |v: &f64| tick(*v, self.log, self.c);
        bar.configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .set_all_tick_mark_size(5) // the default 2 px butts the labels against the bar
            .y_label_formatter(&yf)
            .label_style((FONT, 16))
            .axis_desc_style((FONT, 18))
            .y_desc(["value", "value (log scale)"][usize::from(self.log)])
            .draw()?;
        let to_y = |t: f64| {
            let v = self.c.0 + t * (self.c.1 - self.c.0);
            if self.log {
                10f64.powf(v)
            } else {
                v
            }
        };
        const N: usize = 256;
        let strip = |k: usize| {
            let (t0, t1) = (k as f64 / N as f64, (k + 1) as f64 / N as f64);
            let colour = viridis((t0 + t1) / 2.0).filled();
            Rectangle::new([(0.0, to_y(t0)), (1.0, to_y(t1))], colour)
        };
        bar.draw_series((0..N).map(strip))?;
        let frame = Rectangle::new([(0.0, to_y(0.0)), (1.0, to_y(1.0))], BLACK);
        bar.plotting_area().draw(&frame)?;
        Ok(())
    }
}

impl Render for HeatPlan<'_> {
    fn render<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let area = root.margin(20, 0, 0, 0).titled(self.text[0], (FONT, 26))?;
        let (main, bar) = area.split_horizontally(SIZE.0 - 140);
        let mut chart = ChartBuilder::on(&main)
            .margin(20)
            .margin_top(10)
            .x_label_area_size(55)
            .y_label_area_size(80)
            .build_cartesian_2d(self.x.0..self.x.1, self.y.0..self.y.1)?;
        let xf = |v: &f64| tick(*v, false, self.x);
        let yf = |v: &f64| tick(*v, false, self.y);
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(self.text[1])
            .y_desc(self.text[2])
            .x_label_formatter(&xf)
            .y_label_formatter(&yf)
            .label_style((FONT, 16))
            .axis_desc_style((FONT, 20))
            .draw()?;
        let t = |c: f64| (c - self.c.0) / (self.c.1 - self.c.0);
        let cell = |&(x0, x1, y0, y1, c): &(f64, f64, f64, f64, f64)| {
            Rectangle::new([(x0, y0), (x1, y1)], viridis(t(c)).filled())
        };
        chart.draw_series(self.cells.iter().map(cell))?;
        let (c0, c1) = (10f64.powf(self.c.0), 10f64.powf(self.c.1));
        match self.log {
            true => self.colour_bar(&bar, LogAxis::new(c0, c1)),
            false => self.colour_bar(&bar, RangedCoordf64::from(self.c.0..self.c.1)),
        }
    }
}
