//! Publication-style charts (line/scatter and heatmap), each written as both SVG (scalable, for
//! papers) and PNG (quick viewing). Bad data points are skipped rather than failing a long run's
//! reporting, and files appear atomically so a crash never leaves a half-written plot behind.

mod axis;
mod heatmap;
mod line;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{ensure, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

pub use heatmap::heatmap;
pub use line::{line_chart, solution_chart};

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
