//! A memory and size plan made before anything is allocated.
//!
//! `--nc 1e12`, `--widths 100000,100000`, `--trials 1e11`, `ntk --method dense --nc 16384` or
//! `solve --points 1e12` used to grow until the operating system killed the process (or panicked with
//! "capacity overflow"). The functions here estimate, from the options alone, the bytes a
//! command will hold at its peak, and [`check_fits`] compares the estimate with the memory the
//! machine has, refusing with the estimate and the option to change:
//! `--nc 1000000000000 needs ~40 TiB; this machine has 23 GiB available; lower --nc`.
//!
//! Every function is pure and counts in saturating u128 arithmetic ([`Bytes`]): 10¹² points or
//! 10²⁰ parameters give a (huge) number, never an overflow or a panic; a count beyond u128 is
//! [`Bytes::MAX`], which fits nowhere. The estimates are deliberately simple (the big arrays
//! only, each counted once at its peak); they are for refusing the absurd, not for accounting.

use std::fmt;

use candle_core::DType;

use crate::ModelError;

/// A byte count that saturates at `u128::MAX` instead of overflowing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u128);

impl Bytes {
    /// More than can be counted: fits nowhere.
    pub const MAX: Bytes = Bytes(u128::MAX);

    pub fn new(n: u128) -> Self {
        Bytes(n)
    }
    /// `count` values of `size` bytes each.
    pub fn of(count: u128, size: u128) -> Self {
        Bytes(count.saturating_mul(size))
    }
    pub fn plus(self, other: Bytes) -> Self {
        Bytes(self.0.saturating_add(other.0))
    }
    pub fn times(self, k: u128) -> Self {
        Bytes(self.0.saturating_mul(k))
    }
    pub fn get(self) -> u128 {
        self.0
    }
}

impl std::iter::Sum for Bytes {
    fn sum<I: Iterator<Item = Bytes>>(iter: I) -> Self {
        iter.fold(Bytes(0), Bytes::plus)
    }
}

impl fmt::Display for Bytes {
    /// IEC units with three significant digits ("23.0 GiB", "36.4 TiB"); beyond EiB in
    /// scientific notation; [`Bytes::MAX`] as "more than 10³⁸ bytes".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 7] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        if self.0 == u128::MAX {
            return f.write_str("more than 10^38 bytes");
        }
        if self.0 < 1024 {
            return write!(f, "{} bytes", self.0);
        }
        let mut v = self.0 as f64;
        let mut unit = 0;
        while v >= 1024.0 && unit + 1 < UNITS.len() {
            v /= 1024.0;
            unit += 1;
        }
        if v >= 1024.0 {
            return write!(f, "{:.2e} bytes", self.0 as f64);
        }
        let digits = if v >= 100.0 {
            0
        } else if v >= 10.0 {
            1
        } else {
            2
        };
        write!(f, "{v:.digits$} {}", UNITS[unit])
    }
}

/// Bytes per value of a compute dtype (f32: 4, f64: 8; others by candle's size).
pub fn dtype_bytes(dtype: DType) -> u128 {
    dtype.size_in_bytes() as u128
}

/// N_p of an MLP with scalar input and output and the given hidden widths:
/// Σ over the layers of (in·out + out) for dims `[1, widths…, 1]`, saturating.
pub fn num_params(widths: &[u128]) -> u128 {
    let mut total: u128 = 0;
    let mut prev: u128 = 1;
    for &w in widths.iter().chain(std::iter::once(&1)) {
        total = total
            .saturating_add(prev.saturating_mul(w))
            .saturating_add(w);
        prev = w;
    }
    total
}

/// Values per collocation row and hidden unit that the Taylor-mode forward keeps for the
/// backward pass: pre-activation and activation for each of the three streams (u, u', u'')
/// and σ', σ''.
pub const JET_VALUES_PER_ROW_UNIT: u128 = 8;

/// Per collocation row: x, the residual coefficients c0, c1, c2 and g, on the host in f64 and on
/// the device in the compute dtype.
const ROW_VALUES: u128 = 5;

/// Bookkeeping per trial held for the whole run (its result slot, summary row, history head).
pub const TRIAL_RECORD_BYTES: u128 = 4096;

/// Rows per tile of the CPU engine (its default, [`crate::DEFAULT_TILE`]).
pub const DEFAULT_TILE_ROWS: u128 = crate::DEFAULT_TILE as u128;

/// What [`training_bytes`] needs to know about a `train` (or `bench`) invocation.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingSize {
    /// N_c, collocation points (boundary rows are negligible).
    pub nc: u128,
    /// Hidden widths.
    pub widths: Vec<u128>,
    /// Trials in all (each keeps a record for the run's life).
    pub trials: u128,
    /// Trials trained at once (`--jobs`), each with its own network, optimiser and jets.
    pub concurrent: u128,
    /// Bytes per value of the compute dtype.
    pub dtype_bytes: u128,
    /// Threads of the CPU engine per trial and rows per tile (0 threads: no CPU engine).
    pub threads: u128,
    pub tile: u128,
    /// Whether the schedule has an LM / Gauss–Newton phase (an N_c × N_p f64 Jacobian and an
    /// N_p × N_p or N_c × N_c normal matrix) or L-BFGS (`lbfgs_memory` pairs of N_p vectors).
    pub second_order: bool,
    pub lbfgs_memory: u128,
}

impl TrainingSize {
    /// A plain first-order plan: one trial at a time, no engine threads, Adam only.
    pub fn new(nc: u128, widths: &[u128], trials: u128, dtype: DType) -> Self {
        TrainingSize {
            nc,
            widths: widths.to_vec(),
            trials,
            concurrent: 1,
            dtype_bytes: dtype_bytes(dtype),
            threads: 0,
            tile: DEFAULT_TILE_ROWS,
            second_order: false,
            lbfgs_memory: 0,
        }
    }
}

/// Peak bytes of training: per concurrent trial the parameters with gradient and the two Adam
/// moments (4·N_p values), L-BFGS pairs and an f64 copy of θ, the LM Jacobian and normal matrix,
/// the collocation rows, the jets (≈ 8·N_c·width values per hidden layer) and the CPU engine's
/// tile workspace per thread; plus a record per trial.
pub fn training_bytes(s: &TrainingSize) -> Bytes {
    let b = s.dtype_bytes;
    let np = num_params(&s.widths);
    let width_sum: u128 = s.widths.iter().fold(0u128, |acc, &w| acc.saturating_add(w));
    let width_max: u128 = s.widths.iter().copied().max().unwrap_or(0);
    let first = s.widths.first().copied().unwrap_or(0);

    let params = Bytes::of(np, b).times(4);
    let lbfgs = Bytes::of(np, 8).times(s.lbfgs_memory.saturating_mul(2).saturating_add(3));
    let second = if s.second_order {
        let jac = Bytes::of(s.nc.saturating_mul(np), 8);
        let small = s.nc.min(np);
        jac.plus(Bytes::of(small.saturating_mul(small), 8).times(2))
    } else {
        Bytes(0)
    };
    let rows = Bytes::of(s.nc, ROW_VALUES * 8).plus(Bytes::of(s.nc, ROW_VALUES * b));
    let jets = Bytes::of(s.nc.saturating_mul(width_sum), JET_VALUES_PER_ROW_UNIT * b);
    // cpu_engine/tile.rs's TileWs: 8·tile·width per hidden layer, two adjoint buffers of 3·tile·wmax,
    // layer 0's weights repeated per row, and a gradient of N_p.
    let per_thread = Bytes::of(
        s.tile.saturating_mul(width_sum),
        JET_VALUES_PER_ROW_UNIT * b,
    )
    .plus(Bytes::of(s.tile.saturating_mul(width_max), 6 * b))
    .plus(Bytes::of(s.tile.saturating_mul(first), b))
    .plus(Bytes::of(np, b));
    let workspace = per_thread.times(s.threads);
    let per_trial = [params, lbfgs, second, rows, jets, workspace]
        .into_iter()
        .sum::<Bytes>();
    per_trial
        .times(s.concurrent.min(s.trials).max(1))
        .plus(Bytes::of(s.trials, TRIAL_RECORD_BYTES))
}

/// How the NTK is formed (mirrors `mspinn_ntk::Method`, which this crate cannot name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NtkMethod {
    /// Dense when N ≤ N_p, Gram otherwise.
    Auto,
    /// The N × N matrix K = J Jᵀ D in f64, from the whole N × N_p Jacobian.
    Dense,
    /// G = Jᵀ D J, N_p × N_p, accumulated over chunks of Jacobian rows.
    Gram,
}

/// Copies of the N × N (dense) or N_p × N_p (Gram) f64 matrix alive at the peak: the matrix and
/// the eigensolver's working copy and eigenvectors.
pub const NTK_MATRIX_COPIES: u128 = 3;

/// Peak bytes of an NTK analysis of an MLP with `widths` at `n` rows (N_c collocation plus the
/// boundary rows): dense, the N × N_p f64 Jacobian plus [`NTK_MATRIX_COPIES`] N × N f64
/// matrices; Gram, [`NTK_MATRIX_COPIES`] N_p × N_p f64 matrices plus one chunk of Jacobian rows
/// (`chunk_bytes`, the `--chunk-mb` budget, or the whole Jacobian if that is smaller).
pub fn ntk_bytes(n: u128, widths: &[u128], method: NtkMethod, chunk_bytes: u128) -> Bytes {
    let np = num_params(widths);
    let jacobian = Bytes::of(n.saturating_mul(np), 8);
    let rows = Bytes::of(n, ROW_VALUES * 8);
    let method = match method {
        NtkMethod::Auto if n <= np => NtkMethod::Dense,
        NtkMethod::Auto => NtkMethod::Gram,
        m => m,
    };
    let core = match method {
        NtkMethod::Dense => {
            jacobian.plus(Bytes::of(n.saturating_mul(n), 8).times(NTK_MATRIX_COPIES))
        }
        _ => Bytes::of(np.saturating_mul(np), 8)
            .times(NTK_MATRIX_COPIES)
            .plus(jacobian.min(Bytes(chunk_bytes))),
    };
    core.plus(rows)
}

/// Values kept per output point of `solve --points N`: x, u, u', the homogenised ū, the exact
/// solution where known, and the formatted CSV row (≈ 3 values' worth).
pub const SOLVE_VALUES_PER_POINT: u128 = 8;

/// Peak bytes of `solve --points n` (the reference solver's panels are bounded separately by
/// its panel limit).
pub fn solve_bytes(points: u128) -> Bytes {
    Bytes::of(points, SOLVE_VALUES_PER_POINT * 8)
}

/// `MemAvailable` of /proc/meminfo in bytes: what can be allocated without swapping. `None`
/// where there is no /proc/meminfo (not Linux) or it cannot be read.
pub fn available_memory() -> Option<u128> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo(&text)
}

/// `MemAvailable` from the text of /proc/meminfo (`MemAvailable:   23456789 kB`), in bytes.
pub fn parse_meminfo(text: &str) -> Option<u128> {
    let line = text.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?;
    let mut parts = line.split_whitespace();
    let value: u128 = parts.next()?.parse().ok()?;
    let unit = match parts.next() {
        None => 1,
        Some(u) if u.eq_ignore_ascii_case("kB") => 1024,
        Some(u) if u.eq_ignore_ascii_case("MB") => 1024 * 1024,
        Some(u) if u.eq_ignore_ascii_case("B") => 1,
        Some(_) => return None,
    };
    Some(value.saturating_mul(unit))
}

/// The share of the available memory a command may plan on: the rest is for the allocator,
/// candle's temporaries and everything else running.
pub const USABLE_FRACTION: f64 = 0.9;

/// Where the available memory is unknown, anything beyond this (16 TiB) is refused anyway: no
/// machine this runs on has it.
pub const UNKNOWN_MEMORY_CAP: u128 = 1 << 44;

/// `Ok` when `needs` fits in [`USABLE_FRACTION`] of `available` (or, with `available` unknown,
/// under [`UNKNOWN_MEMORY_CAP`]); otherwise [`ModelError::TooLarge`]:
/// "`what` needs ~36.4 TiB; this machine has 23.0 GiB available; `hint`".
///
/// `what` names the options that drive the size (`"--nc 1000000000000"`), `hint` the way out
/// (`"lower --nc or use --method gram"`).
pub fn check_fits(
    what: &str,
    needs: Bytes,
    available: Option<u128>,
    hint: &str,
) -> Result<(), ModelError> {
    let (limit, shown) = match available {
        Some(av) => (
            Bytes((av as f64 * USABLE_FRACTION) as u128),
            Bytes(av).to_string(),
        ),
        None => (
            Bytes(UNKNOWN_MEMORY_CAP),
            format!(
                "no way to tell how much memory is available (refusing above {})",
                Bytes(UNKNOWN_MEMORY_CAP)
            ),
        ),
    };
    if needs <= limit {
        Ok(())
    } else {
        Err(ModelError::TooLarge {
            what: what.to_owned(),
            needs: needs.to_string(),
            available: shown,
            hint: hint.to_owned(),
        })
    }
}

/// A count (points, trials, widths, iterations) given as a float — `--nc 1e6` — as an integer,
/// or an error naming `option`: NaN, ±∞, negative, fractional or beyond u64 are refused, never
/// cast (`1e20 as usize` saturates silently; `inf` used to end in "capacity overflow").
pub fn count_from_f64(option: &str, value: f64) -> Result<u64, ModelError> {
    let fail = |reason: &str| ModelError::Count {
        option: option.to_owned(),
        value: value.to_string(),
        reason: reason.to_owned(),
    };
    if value.is_nan() {
        return Err(fail("not a number"));
    }
    if value.is_infinite() {
        return Err(fail("must be finite"));
    }
    if value < 0.0 {
        return Err(fail("must not be negative"));
    }
    if value.fract() != 0.0 {
        return Err(fail("must be a whole number"));
    }
    // 2^64 is the first f64 that is too large for u64 (u64::MAX itself rounds up to it).
    if value >= 18_446_744_073_709_551_616.0 {
        return Err(fail("is more than can be counted (2^64)"));
    }
    Ok(value as u64)
}

/// [`count_from_f64`] from the text of an option (`"1e6"`, `"4096"`, `" 10 "`), as a usize.
pub fn parse_count(option: &str, text: &str) -> Result<usize, ModelError> {
    let value: f64 = text.trim().parse().map_err(|_| ModelError::Count {
        option: option.to_owned(),
        value: text.to_owned(),
        reason: "not a number".to_owned(),
    })?;
    let n = count_from_f64(option, value)?;
    usize::try_from(n).map_err(|_| ModelError::Count {
        option: option.to_owned(),
        value: text.to_owned(),
        reason: "is more than this machine can address".to_owned(),
    })
}

/// Threads per core beyond which more threads only add scheduling overhead (and thousands of
/// them hang a run): [`max_threads`] is this many times the cores.
pub const THREADS_PER_CORE_CAP: usize = 4;

/// The cores this process may run on (1 when unknown).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The largest thread count accepted: [`THREADS_PER_CORE_CAP`] × `cores`.
pub fn max_threads(cores: usize) -> usize {
    cores.max(1).saturating_mul(THREADS_PER_CORE_CAP)
}

/// `requested` threads when 1 ≤ requested ≤ [`max_threads`]`(cores)`, else an error naming
/// `option` and the cap.
pub fn check_threads(option: &str, requested: usize, cores: usize) -> Result<usize, ModelError> {
    let cap = max_threads(cores);
    if requested == 0 {
        return Err(ModelError::Count {
            option: option.to_owned(),
            value: "0".to_owned(),
            reason: "at least one thread is needed".to_owned(),
        });
    }
    if requested > cap {
        return Err(ModelError::Count {
            option: option.to_owned(),
            value: requested.to_string(),
            reason: format!(
                "more than {THREADS_PER_CORE_CAP} threads per core ({cores} cores here, at most {cap})"
            ),
        });
    }
    Ok(requested)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u128 = 1 << 30;
    const TIB: u128 = 1 << 40;

    #[test]
    fn params_of_the_paper_network_and_of_absurd_ones() {
        // 4×40: 80 + 3·1640 + 41
        assert_eq!(num_params(&[40, 40, 40, 40]), 80 + 3 * 1640 + 41);
        assert_eq!(num_params(&[10]), 31);
        // --widths 100000,100000: 10^10 weights in the middle layer.
        assert_eq!(
            num_params(&[100_000, 100_000]),
            200_000 + 10_000_100_000 + 100_001
        );
        // Saturates instead of overflowing.
        assert_eq!(num_params(&[u128::MAX, u128::MAX]), u128::MAX);
        // --depth 100000 of width 40 is counted, not overflowed.
        let deep = vec![40u128; 100_000];
        assert_eq!(num_params(&deep), 80 + 99_999 * 1640 + 41);
    }

    #[test]
    fn training_at_the_paper_size_fits_and_at_1e12_points_does_not() {
        let paper = TrainingSize::new(1024, &[40, 40, 40, 40], 10, DType::F32);
        let b = training_bytes(&paper);
        assert!(b < Bytes(64 << 20), "{b}");
        check_fits("--nc 1024", b, Some(8 * GIB), "lower --nc").unwrap();

        let huge = TrainingSize::new(1_000_000_000_000, &[40, 40, 40, 40], 1, DType::F32);
        let b = training_bytes(&huge);
        // The jets alone: 8 · 10¹² · 160 · 4 bytes ≈ 4.7 PiB.
        assert!(b > Bytes(4 * 1024 * TIB), "{b}");
        let e = check_fits("--nc 1000000000000", b, Some(23 * GIB), "lower --nc").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("--nc 1000000000000 needs ~")
                && msg.contains("PiB")
                && msg.contains("this machine has 23.0 GiB available; lower --nc"),
            "{msg}"
        );

        // 10^20 points and 10^11 trials are numbers, not overflows.
        let mut absurd = TrainingSize::new(
            100_000_000_000_000_000_000,
            &[100_000, 100_000],
            100_000_000_000,
            DType::F64,
        );
        absurd.second_order = true;
        absurd.threads = 1_000_000;
        absurd.concurrent = 1 << 40;
        let b = training_bytes(&absurd);
        assert_eq!(b, Bytes::MAX);
        assert!(check_fits("--nc 1e20", b, Some(u128::MAX), "lower --nc").is_err());
        let trials = TrainingSize::new(1024, &[40, 40], 100_000_000_000, DType::F32);
        assert!(training_bytes(&trials) > Bytes(100 * TIB));
    }

    #[test]
    fn ntk_dense_at_16384_points_is_gigabytes_and_gram_is_not() {
        let w = [40u128, 40, 40, 40];
        let np = num_params(&w);
        let dense = ntk_bytes(16_384, &w, NtkMethod::Dense, 256 << 20);
        // 3 · 16384² · 8 bytes = 6 GiB of matrices plus the Jacobian.
        assert!(dense >= Bytes(6 * GIB) && dense < Bytes(7 * GIB), "{dense}");
        let gram = ntk_bytes(16_384, &w, NtkMethod::Gram, 256 << 20);
        assert!(gram < Bytes(GIB), "{gram}");
        assert_eq!(ntk_bytes(16_384, &w, NtkMethod::Auto, 256 << 20), gram);
        assert_eq!(
            ntk_bytes(np, &w, NtkMethod::Auto, 256 << 20),
            ntk_bytes(np, &w, NtkMethod::Dense, 256 << 20)
        );
        assert!(check_fits(
            "ntk --method dense --nc 16384",
            dense,
            Some(4 * GIB),
            "use --method gram"
        )
        .is_err());
        // 10^12 and 10^20 rows: huge or saturated, never a panic.
        assert!(ntk_bytes(1_000_000_000_000, &w, NtkMethod::Dense, 0) > Bytes(1 << 70));
        assert_eq!(
            ntk_bytes(100_000_000_000_000_000_000, &w, NtkMethod::Dense, 0),
            Bytes::MAX
        );
        let g = ntk_bytes(100_000_000_000_000_000_000, &w, NtkMethod::Gram, 256 << 20);
        // The Gram path streams Jacobian rows, but the collocation rows themselves are held.
        assert!(g > Bytes(1 << 71) && g < Bytes::MAX, "{g}");
    }

    #[test]
    fn solve_points() {
        assert_eq!(solve_bytes(1000), Bytes(64_000));
        let e = check_fits(
            "solve --points 1000000000000",
            solve_bytes(1_000_000_000_000),
            Some(16 * GIB),
            "lower --points",
        )
        .unwrap_err();
        assert!(e.to_string().contains("58.2 TiB"), "{e}");
        assert_eq!(solve_bytes(u128::MAX), Bytes::MAX);
    }

    #[test]
    fn byte_counts_print_readably() {
        assert_eq!(Bytes(0).to_string(), "0 bytes");
        assert_eq!(Bytes(1023).to_string(), "1023 bytes");
        assert_eq!(Bytes(1536).to_string(), "1.50 KiB");
        assert_eq!(Bytes(23 * GIB).to_string(), "23.0 GiB");
        assert_eq!(Bytes(40 * TIB).to_string(), "40.0 TiB");
        assert_eq!(Bytes((1 << 70) - (1 << 60)).to_string(), "1023 EiB");
        assert_eq!(Bytes(1 << 70).to_string(), "1.18e21 bytes");
        assert_eq!(Bytes(1 << 80).to_string(), "1.21e24 bytes");
        assert_eq!(Bytes::MAX.to_string(), "more than 10^38 bytes");
    }

    #[test]
    fn meminfo_is_parsed_and_unknown_memory_has_a_cap() {
        let text =
            "MemTotal:       32768000 kB\nMemFree:         1000 kB\nMemAvailable:   24117248 kB\n";
        assert_eq!(parse_meminfo(text), Some(24_117_248 * 1024));
        assert_eq!(parse_meminfo("MemTotal: 5 kB\n"), None);
        assert_eq!(parse_meminfo("MemAvailable: lots kB\n"), None);
        assert_eq!(
            parse_meminfo("MemAvailable: 99999999999999999999999999999999999999 kB"),
            Some(u128::MAX)
        );
        if cfg!(target_os = "linux") {
            assert!(available_memory().is_some_and(|b| b > 0));
        }
        assert!(check_fits("x", Bytes(GIB), None, "h").is_ok());
        let e = check_fits("--nc 1e12", Bytes(40 * TIB), None, "lower --nc").unwrap_err();
        assert!(e.to_string().contains("no way to tell"), "{e}");
        // 90% of what is available may be planned on.
        assert!(check_fits("x", Bytes(9 * GIB), Some(10 * GIB), "h").is_ok());
        assert!(check_fits("x", Bytes(9 * GIB + 1), Some(10 * GIB), "h").is_err());
    }

    #[test]
    fn counts_from_floats_are_checked_never_cast() {
        assert_eq!(count_from_f64("--nc", 1e6).unwrap(), 1_000_000);
        assert_eq!(count_from_f64("--nc", 0.0).unwrap(), 0);
        assert_eq!(count_from_f64("--nc", 1e12).unwrap(), 1_000_000_000_000);
        assert_eq!(
            count_from_f64("--nc", 9.0e18).unwrap(),
            9_000_000_000_000_000_000
        );
        for (bad, why) in [
            (1e20, "more than can be counted"),
            (18_446_744_073_709_551_615.0, "more than can be counted"),
            (f64::INFINITY, "finite"),
            (f64::NEG_INFINITY, "finite"),
            (f64::NAN, "not a number"),
            (-1.0, "negative"),
            (2.5, "whole number"),
        ] {
            let e = count_from_f64("--nc-eps2", bad).unwrap_err().to_string();
            assert!(e.starts_with("--nc-eps2 ") && e.contains(why), "{bad}: {e}");
        }
        assert_eq!(parse_count("--points", " 4096 ").unwrap(), 4096);
        assert_eq!(parse_count("--points", "1e3").unwrap(), 1000);
        for bad in ["1e20", "inf", "NaN", "-5", "x", ""] {
            let e = parse_count("--points", bad).unwrap_err().to_string();
            assert!(e.starts_with("--points "), "{bad}: {e}");
        }
    }

    #[test]
    fn thread_counts_are_capped_at_a_multiple_of_the_cores() {
        assert_eq!(max_threads(16), 64);
        assert_eq!(max_threads(0), 4);
        assert_eq!(max_threads(usize::MAX), usize::MAX);
        assert_eq!(check_threads("--threads", 8, 2).unwrap(), 8);
        let e = check_threads("--threads", 100_000, 16)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--threads 100000: ") && e.contains("at most 64"),
            "{e}"
        );
        assert!(check_threads("--threads", 0, 16).is_err());
        assert!(available_cores() >= 1);
    }
}
