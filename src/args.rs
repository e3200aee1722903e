//! Parsing of the numbers people type: ε as `1/32` or `0.03125`, lists and ranges of them, width
//! lists, dtypes.

use anyhow::{bail, Context, Result};
use candle_core::DType;

/// A number or a fraction `p/q` (`1/32`; `pi` alone is π): [`mspinn_problem::parse_number`],
/// as an `anyhow` error for clap and the flag parsers.
pub fn parse_number(s: &str) -> Result<f64> {
    Ok(mspinn_problem::parse_number(s)?)
}

/// A list of ε values: `1/10,1/20,1/40`, or a range `1/10:1/100:10` — that many values whose
/// reciprocals are evenly spaced (1/10, 1/20, …, 1/100), the spacing of the paper's Fig. 2.
pub fn parse_eps_list(s: &str) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let parts: Vec<&str> = item.split(':').collect();
        match parts.as_slice() {
            [one] => out.push(parse_number(one)?),
            [a, b, n] => {
                let (a, b) = (parse_number(a)?, parse_number(b)?);
                let n: usize = n
                    .trim()
                    .parse()
                    .with_context(|| format!("range {item:?}: {n:?} is not a count"))?;
                if n < 2 || a <= 0.0 || b <= 0.0 {
                    bail!("range {item:?}: need two positive ends and at least 2 values");
                }
                let (ia, ib) = (1.0 / a, 1.0 / b);
                out.extend((0..n).map(|k| 1.0 / (ia + (ib - ia) * k as f64 / (n - 1) as f64)));
            }
            _ => bail!("{item:?}: expected a value like 1/32 or a range like 1/10:1/100:10"),
        }
    }
    if out.is_empty() {
        bail!("no ε values in {s:?}");
    }
    for &e in &out {
        if e <= 0.0 {
            bail!("ε = {e} must be > 0");
        }
    }
    Ok(out)
}

/// A list of positive integers `256,512,1024`.
pub fn parse_usize_list(s: &str) -> Result<Vec<usize>> {
    let v: Vec<usize> = s
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<f64>()
                .ok()
                // Below 2^64: a larger count would saturate to usize::MAX, not be an error.
                .filter(|x| x.is_finite() && *x >= 1.0 && x.fract() == 0.0 && *x < 1.8e19)
                .map(|x| x as usize)
                .with_context(|| format!("{t:?} is not a positive integer"))
        })
        .collect::<Result<_>>()?;
    if v.is_empty() {
        bail!("empty list {s:?}");
    }
    Ok(v)
}

/// Hidden widths from `--widths 40,40,40,40` or `--depth 4 --width 40`.
pub fn hidden_widths(
    widths: Option<&str>,
    depth: Option<usize>,
    width: Option<usize>,
    default: &[usize],
) -> Result<Vec<usize>> {
    if let Some(w) = widths {
        return parse_usize_list(w).context("--widths");
    }
    match (depth, width) {
        (None, None) => Ok(default.to_vec()),
        (d, w) => {
            let d = d.unwrap_or(default.len());
            let w = w.unwrap_or(default.first().copied().unwrap_or(40));
            if d == 0 || w == 0 {
                bail!("--depth and --width must be ≥ 1 (got depth {d}, width {w})");
            }
            Ok(vec![w; d])
        }
    }
}

pub fn parse_dtype(s: &str) -> Result<DType> {
    match s {
        "f64" => Ok(DType::F64),
        "f32" => Ok(DType::F32),
        other => bail!("--dtype {other:?}: mspinn computes in f32 or f64"),
    }
}

pub fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        _ => "f64",
    }
}

/// ε as 1/k when it is one, else as a decimal.
pub fn fmt_eps(e: f64) -> String {
    let k = 1.0 / e;
    if (k - k.round()).abs() < 1e-9 * k {
        format!("1/{}", k.round())
    } else {
        format!("{e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_fractions_and_ranges() {
        assert_eq!(parse_number("1/32").unwrap(), 1.0 / 32.0);
        assert_eq!(parse_number(" 0.5 ").unwrap(), 0.5);
        assert!(parse_number("1/0").is_err());
        assert!(parse_number("abc").is_err());
        assert!(parse_number("nan").is_err());
        let r = parse_eps_list("1/10:1/100:10").unwrap();
        assert_eq!(r.len(), 10);
        assert!((r[0] - 0.1).abs() < 1e-15 && (r[9] - 0.01).abs() < 1e-15);
        assert!((r[1] - 0.05).abs() < 1e-15);
        assert_eq!(parse_eps_list("1/10, 1/20").unwrap(), vec![0.1, 0.05]);
        assert!(parse_eps_list("-1").is_err());
        assert!(parse_eps_list("").is_err());
        assert_eq!(parse_usize_list("256,1e3").unwrap(), vec![256, 1000]);
        assert!(parse_usize_list("0").is_err());
        assert_eq!(
            hidden_widths(None, Some(2), Some(7), &[40; 4]).unwrap(),
            vec![7, 7]
        );
        assert!(hidden_widths(None, Some(0), None, &[40]).is_err());
    }
}
