//! Publication-style charts (line/scatter and heatmap), each written as both SVG (scalable, for
//! papers) and PNG (quick viewing). Bad data points are skipped rather than failing a long run's
//! reporting, and files appear atomically so a crash never leaves a half-written plot behind.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{bail, ensure, Context, Result};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

/// One data series; `x` and `y` are paired up to the shorter of the two.
pub struct Series<'a> {
    pub name: &'a str,
    pub x: &'a [f64],
    pub y: &'a [f64],
    pub style: SeriesStyle,
}

#[derive(Clone, Copy)]
pub enum SeriesStyle {
    Line,
    Points,
    LinePoints,
    Dashed,
}

pub struct Axes<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub log_x: bool,
    pub log_y: bool,
}

const SIZE: (u32, u32) = (1000, 650);
const FONT: &str = "sans-serif";
/// Embedded so PNG text renders on headless machines without system fonts.
static FONT_BYTES: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/DejaVuSans.ttf"
));
/// Matplotlib's "tab10": distinct, colour-blind tolerant and familiar to readers.
const PALETTE: [u32; 10] = [
    0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22,
    0x17becf,
];
/// Viridis at 9 evenly spaced stops: perceptually uniform and still readable in greyscale.
const VIRIDIS: [u32; 9] = [
    0x440154, 0x472d7b, 0x3b528b, 0x2c728e, 0x21918c, 0x28ae80, 0x5ec962, 0xaddc30, 0xfde725,
];

/// Magnitude limits of plottable values (others count as invalid, like NaN): plotters' pixel
/// mapping overflows (a panic in debug builds) on huge values, and its log-axis ticks hang once
/// the axis spans more than ~300 decades (the range ratio overflows f64).
const LIN_MAX: f64 = 1e250;
const LOG_MAX: f64 = 1e100;

fn plottable(v: f64, log: bool) -> bool {
    if log {
        (1.0 / LOG_MAX..=LOG_MAX).contains(&v)
    } else {
        v.abs() <= LIN_MAX
    }
}

fn rgb(hex: u32) -> RGBColor {
    RGBColor((hex >> 16) as u8, (hex >> 8) as u8, hex as u8)
}

/// plotters' `ab_glyph` text backend knows no fonts until one is registered; once per process
/// is enough, and avoids re-parsing the font for every chart.
fn ensure_font() -> Result<()> {
    static OK: OnceLock<bool> = OnceLock::new();
    let register = || plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
    ensure!(
        *OK.get_or_init(|| register().is_ok()),
        "embedded font failed to parse"
    );
    Ok(())
}

/// A chart that can draw itself on any backend, so SVG and PNG share one code path.
trait Render {
    fn render<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static;
}

/// Appends rather than `with_extension`, which would eat a dot inside the stem (`run.v2`).
fn suffixed(stem: &Path, suffix: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).with_context(|| format!("renaming to {}", to.display()))
}

fn write_outputs(stem: &Path, plan: &impl Render) -> Result<()> {
    ensure_font()?;
    if let Some(dir) = stem.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        plan.render(&root)?;
        root.present()?;
    }
    let tmp = suffixed(stem, ".svg.tmp");
    std::fs::write(&tmp, svg).with_context(|| format!("writing {}", tmp.display()))?;
    rename(&tmp, &suffixed(stem, ".svg"))?;
    // The bitmap encoder picks the format from the extension, hence `.tmp.png`, not `.png.tmp`.
    let tmp = suffixed(stem, ".tmp.png");
    let result = {
        let root = BitMapBackend::new(&tmp, SIZE).into_drawing_area();
        plan.render(&root).and_then(|()| Ok(root.present()?))
    }; // dropped here: a failed bitmap still saves itself on drop, so clean up only after
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.context(format!("rendering {}", tmp.display())));
    }
    rename(&tmp, &suffixed(stem, ".png"))
}

/// Axis range for data in `[lo, hi]`: log axes narrower than a decade snap outward to whole
/// decades (plotters only ticks log axes at powers of ten); flat data is widened to stay visible.
fn axis_range(lo: f64, hi: f64, log: bool, pad: f64) -> (f64, f64) {
    let (mut lo, mut hi) = if log {
        (lo.log10(), hi.log10())
    } else {
        (lo, hi)
    };
    if log && hi - lo < 1.0 {
        (lo, hi) = (lo.floor(), hi.ceil());
        if lo == hi {
            (lo, hi) = (lo - 1.0, hi + 1.0);
        }
    } else if !log && hi - lo <= 1e-9 * lo.abs().max(hi.abs()) {
        let half = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo, hi) = (lo - half, hi + half);
    }
    let p = (hi - lo) * pad;
    match log {
        true => (10f64.powf(lo - p), 10f64.powf(hi + p)),
        false => (lo - p, hi + p),
    }
}

/// Drops trailing zeros so `0.50` reads `0.5`, and `-0` reads `0`.
fn trim(s: String) -> String {
    let t = s
        .contains('.')
        .then(|| s.trim_end_matches('0').trim_end_matches('.'));
    let t = t.unwrap_or(&s);
    if t == "-0" { "0" } else { t }.to_string()
}

/// Tick label: compact scientific (`1e-3`, `2.5e4`) on log axes or at extreme magnitudes,
/// otherwise just enough decimals for the tick step, estimated from the range because the
/// formatter never sees the step itself.
fn tick(v: f64, log: bool, (lo, hi): (f64, f64)) -> String {
    if log || !(1e-3..1e5).contains(&lo.abs().max(hi.abs())) {
        if v == 0.0 {
            return "0".into();
        }
        let s = format!("{v:.3e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        return format!("{}e{e}", trim(m.to_string()));
    }
    let dec = (-((hi - lo) / 50.0).log10().floor()).clamp(0.0, 12.0) as usize;
    trim(format!("{v:.dec$}"))
}

/// Maps `t` in [0, 1] (clamped; NaN and -inf give the bottom colour) onto viridis.
fn viridis(t: f64) -> RGBColor {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) } * 8.0;
    let (i, f) = ((t.floor() as usize).min(7), t - t.floor().min(7.0));
    let (a, b) = (rgb(VIRIDIS[i]), rgb(VIRIDIS[i + 1]));
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// A log axis whose ticks are listed once: plotters' `LogCoord` repeats each decade as the last
/// minor tick of the one before, drawing that label twice (it looks bold, and twice in SVGs).
struct LogAxis(LogCoord<f64>);

impl LogAxis {
    fn new(lo: f64, hi: f64) -> Self {
        LogAxis((lo..hi).log_scale().into())
    }
}

impl Ranged for LogAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.0.map(value, limit)
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        let mut keys = self.0.key_points(hint);
        keys.dedup_by(|a, b| (*a / *b - 1.0).abs() < 1e-9);
        keys
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.0.range()
    }
}

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

/// Checks a file is a valid PNG (signature + IHDR) or SVG (parses as text starting with <svg or
/// <?xml and contains </svg>): used by tests.
#[cfg_attr(not(test), allow(dead_code))] // the CLI itself never needs it
pub fn is_valid_image(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    if let Some(rest) = bytes.strip_prefix(b"\x89PNG\r\n\x1a\n") {
        // IHDR first (length 13, non-zero size); a trailing IEND also rules out truncation.
        let be = |i: usize| {
            rest.get(i..i + 4)
                .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        return be(0) == 13
            && rest.get(4..8) == Some(b"IHDR")
            && be(8) > 0
            && be(12) > 0
            && rest.len() >= 37
            && &rest[rest.len() - 8..rest.len() - 4] == b"IEND";
    }
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return false;
    };
    let t = text.trim_start_matches('\u{feff}').trim_start();
    (t.starts_with("<svg") || t.starts_with("<?xml")) && t.contains("</svg>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use SeriesStyle::*;

    /// Fresh per-test directory; kept for inspection when `PLOT_KEEP` is set.
    fn run_in_dir(name: &str, f: impl FnOnce(&Path)) {
        let dir = std::env::temp_dir().join(format!("plot_test_{}_{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        f(&dir);
        if std::env::var_os("PLOT_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    fn axes(title: &str, log: bool) -> Axes<'_> {
        let (x_label, y_label) = ("x label", "y label");
        Axes {
            title,
            x_label,
            y_label,
            log_x: log,
            log_y: log,
        }
    }

    fn ser<'a>(name: &'a str, x: &'a [f64], y: &'a [f64], style: SeriesStyle) -> Series<'a> {
        Series { name, x, y, style }
    }

    fn assert_outputs(stem: &Path) {
        for ext in [".svg", ".png"] {
            let p = suffixed(stem, ext);
            assert!(is_valid_image(&p), "{} is not a valid image", p.display());
        }
        assert!(!suffixed(stem, ".svg.tmp").exists() && !suffixed(stem, ".tmp.png").exists());
    }

    #[test]
    fn log_log_chart() {
        run_in_dir("loglog", |dir| {
            let n: Vec<f64> = (0..12).map(|k| 2f64.powi(k + 3)).collect();
            let e1: Vec<f64> = n.iter().map(|n| 3.0 / n).collect();
            let mut e2: Vec<f64> = n.iter().map(|n| 50.0 / (n * n)).collect();
            e2[3] = -1.0; // non-positive on a log axis: skipped, the line breaks there
            let s = [
                ser("first order", &n, &e1, LinePoints),
                ser("2nd", &n, &e2, Dashed),
            ];
            let stem = dir.join("loglog");
            line_chart(&stem, &axes("Convergence", true), &s).unwrap();
            assert_outputs(&stem);
        });
    }

    #[test]
    fn linear_chart_with_nans() {
        run_in_dir("linear", |dir| {
            let x: Vec<f64> = (0..200).map(|i| i as f64 * 0.05).collect();
            let mut a: Vec<f64> = x.iter().map(|x| x.sin()).collect();
            (a[50], a[51]) = (f64::NAN, f64::INFINITY);
            let b: Vec<f64> = x.iter().map(|x| 0.5 * (2.0 * x).cos()).collect();
            let xc: Vec<f64> = x.iter().step_by(10).copied().collect();
            let c: Vec<f64> = xc.iter().map(|x| (-0.3 * x).exp() - 0.5).collect();
            let (a, b, c) = (
                ser("sin t", &x, &a, Line),
                ser("", &x, &b, Dashed),
                ser("samples", &xc, &c, Points),
            );
            let stem = dir.join("linear.v2"); // the dot must not be taken for an extension
            line_chart(&stem, &axes("Three series", false), &[a, b, c]).unwrap();
            assert_outputs(&stem);
        });
    }

    #[test]
    fn heatmap_renders() {
        run_in_dir("heat", |dir| {
            let xs: Vec<f64> = (0..60).map(|i| i as f64 * 100.0).collect();
            let ys: Vec<f64> = (1..=40).map(|k| k as f64).collect();
            let row = |it: f64| {
                ys.iter()
                    .map(|&f| (-it * 3e-3 / f).exp() / (f * f))
                    .collect()
            };
            let mut values: Vec<Vec<f64>> = xs.iter().map(|&it| row(it)).collect();
            values[0][0] = 0.0; // non-positive → lowest colour
            values[1][1] = f64::NAN; // skipped
            let (stem, title) = (dir.join("heat"), "Spectral residual");
            heatmap(
                &stem,
                title,
                "iteration",
                "frequency k",
                &xs,
                &ys,
                &values,
                true,
            )
            .unwrap();
            assert_outputs(&stem);
            let stem = dir.join("heat_flat"); // single column of constant values
            let flat = [vec![5.0, 5.0]];
            heatmap(&stem, "Flat", "x", "y", &[1.0], &[2.0, 3.0], &flat, false).unwrap();
            assert_outputs(&stem);
        });
    }

    #[test]
    fn empty_input_errors() {
        run_in_dir("empty", |dir| {
            let (nan, neg) = ([f64::NAN], [-1.0, 0.0]);
            let (a, b) = (ser("a", &[], &[], Line), ser("b", &neg, &[1.0, 2.0], Line));
            let c = ser("c", &nan, &nan, Points);
            assert!(line_chart(&dir.join("e"), &axes("t", true), &[a, b, c]).is_err());
            assert!(line_chart(&dir.join("e"), &axes("t", false), &[]).is_err());
            assert!(heatmap(&dir.join("h"), "t", "x", "y", &[], &[], &[], true).is_err());
            assert!(!is_valid_image(&dir.join("e.png")));
            std::fs::write(dir.join("bad.svg"), "<svg>").unwrap();
            assert!(!is_valid_image(&dir.join("bad.svg")));
        });
    }
}
