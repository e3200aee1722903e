//! Axis ranges, tick labels, the log axis and the colour map shared by every chart.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;

use super::{rgb, VIRIDIS};

/// Axis range for data in `[lo, hi]`: log axes narrower than a decade snap outward to whole
/// decades (plotters only ticks log axes at powers of ten); flat data is widened to stay visible.
pub(super) fn axis_range(lo: f64, hi: f64, log: bool, pad: f64) -> (f64, f64) {
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
pub(super) fn tick(v: f64, log: bool, (lo, hi): (f64, f64)) -> String {
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
pub(super) fn viridis(t: f64) -> RGBColor {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) } * 8.0;
    let (i, f) = ((t.floor() as usize).min(7), t - t.floor().min(7.0));
    let (a, b) = (rgb(VIRIDIS[i]), rgb(VIRIDIS[i + 1]));
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// A log axis whose ticks are listed once: plotters' `LogCoord` repeats each decade as the last
/// minor tick of the one before, drawing that label twice (it looks bold, and twice in SVGs).
/// Over more than a decade only the ticks at 1, 2 and 5 times a power of ten are kept: the
/// labels of 6…9 sit too close together to read (they overlapped in docs/sweeps' ε plot).
pub(super) struct LogAxis(LogCoord<f64>);

impl LogAxis {
    pub(super) fn new(lo: f64, hi: f64) -> Self {
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
        let r = self.0.range();
        if r.start > 0.0 && (r.end / r.start).log10() > 1.0 {
            keys.retain(|&v| {
                let mantissa = v / 10f64.powf(v.log10().floor());
                [1.0, 2.0, 5.0, 10.0]
                    .iter()
                    .any(|m| (mantissa / m - 1.0).abs() < 1e-6)
            });
        }
        keys
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.0.range()
    }
}
