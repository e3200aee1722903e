//! A GPU self test for a GPU-check command: for several sizes (not multiples of the block size,
//! with and without boundary rows) and both dtypes, poison the kernels' outputs with NaN, run them,
//! and check that every element was written (finite) and equals the CPU op; then run the
//! tensor-level op and its autograd on the device against the CPU.
//!
//! The CUDA kernels are compiled without FMA contraction and perform the CPU op's operations in
//! the same order, so the expected difference is zero; the tolerance (1e-12 relative in f64,
//! 1e-5 in f32, relative to the largest reference magnitude) only leaves room for a compiler
//! surprise, and the report says whether every element was bit-identical.

use std::fmt;

use candle_core::Device;

use crate::{KernelError, Result};

/// One size × dtype of the self test.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseReport {
    pub dtype: &'static str,
    pub n: usize,
    pub n_pde: usize,
    /// Output elements the forward kernel left non-finite (NaN poison not overwritten, or worse).
    pub fwd_unwritten: usize,
    pub bwd_unwritten: usize,
    /// max |gpu − cpu| / max |cpu| over the raw kernels' outputs.
    pub fwd_rel_err: f64,
    pub bwd_rel_err: f64,
    pub bit_identical: bool,
    /// The same through `fused_residual` + candle autograd on the device (loss and dL/djets).
    /// Its final sums are candle's, whose order differs between devices: hence `op_tol`.
    pub op_rel_err: f64,
    pub tol: f64,
    pub op_tol: f64,
}

impl CaseReport {
    pub fn passed(&self) -> bool {
        self.fwd_unwritten == 0
            && self.bwd_unwritten == 0
            && self.fwd_rel_err <= self.tol
            && self.bwd_rel_err <= self.tol
            && self.op_rel_err <= self.op_tol
    }
}

/// Every case; [`Report::passed`] says whether all passed. `Display` prints a table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub device: String,
    pub cases: Vec<CaseReport>,
}

impl Report {
    pub fn passed(&self) -> bool {
        !self.cases.is_empty() && self.cases.iter().all(CaseReport::passed)
    }
    /// `Err` with the table when any case failed, for callers that only want pass/fail.
    pub fn into_result(self) -> Result<Self> {
        if self.passed() {
            Ok(self)
        } else {
            Err(KernelError::Config {
                what: "kernel self test",
                reason: format!("failed:\n{self}"),
            })
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "fused residual self test on {}", self.device)?;
        writeln!(
            f,
            "{:<5} {:>7} {:>7} {:>9} {:>9} {:>10} {:>10} {:>10} {:>5} {:>4}",
            "dtype",
            "N",
            "n_pde",
            "unwr.fwd",
            "unwr.bwd",
            "fwd err",
            "bwd err",
            "op err",
            "bits",
            "ok"
        )?;
        for c in &self.cases {
            writeln!(
                f,
                "{:<5} {:>7} {:>7} {:>9} {:>9} {:>10.2e} {:>10.2e} {:>10.2e} {:>5} {:>4}",
                c.dtype,
                c.n,
                c.n_pde,
                c.fwd_unwritten,
                c.bwd_unwritten,
                c.fwd_rel_err,
                c.bwd_rel_err,
                c.op_rel_err,
                if c.bit_identical { "same" } else { "diff" },
                if c.passed() { "yes" } else { "NO" }
            )?;
        }
        write!(f, "{}", if self.passed() { "PASS" } else { "FAIL" })
    }
}

/// Sizes tested: one row, a block minus one, non-multiples of the block, and 100 003 rows
/// (391 tiles, so blocks reduce several tiles each only beyond 8192 tiles: not exercised here;
/// the CPU tests cover the tile arithmetic).
pub const SIZES: [usize; 5] = [1, 255, 1000, 4097, 100_003];

/// Runs the self test on `device` (must be a CUDA device of a binary built with `cuda`).
/// `Err` only when the test could not run; a failed comparison is in the report.
pub fn self_test(device: &Device) -> Result<Report> {
    #[cfg(feature = "cuda")]
    {
        match device {
            Device::Cuda(dev) => gpu::run(dev),
            other => Err(KernelError::NoCuda(format!(
                "the kernel self test needs a CUDA device, got {other:?}"
            ))),
        }
    }
    #[cfg(not(feature = "cuda"))]
    {
        Err(KernelError::NoCuda(format!(
            "mspinn-kernels was built without the `cuda` feature (device {device:?})"
        )))
    }
}

/// A small deterministic generator (splitmix64), so the crate needs no RNG dependency and every
/// run of the self test sees the same inputs.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) struct SplitMix(pub u64);
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
impl SplitMix {
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // Uniform in [-1, 1).
        (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// max |a − b| / max(max |b|, tiny), and the count of non-finite entries of `a`.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) fn compare(a: &[f64], b: &[f64]) -> (f64, usize, bool) {
    let scale = b
        .iter()
        .fold(0.0f64, |m, x| m.max(x.abs()))
        .max(f64::MIN_POSITIVE);
    let mut err = 0.0f64;
    let mut bad = 0;
    let mut same = a.len() == b.len();
    for (x, y) in a.iter().zip(b) {
        if !x.is_finite() {
            bad += 1;
            same = false;
            continue;
        }
        err = err.max((x - y).abs() / scale);
        same &= x.to_bits() == y.to_bits();
    }
    (err, bad, same)
}

#[cfg(feature = "cuda")]
mod gpu {
    use candle_core::cuda_backend::cudarc::driver::DeviceRepr;
    use candle_core::{CudaDevice, DType, Device, Tensor, Var, WithDType};

    use super::{compare, CaseReport, Report, SplitMix, SIZES};
    use crate::cuda::{launch_backward, launch_forward};
    use crate::host::{backward, forward};
    use crate::layout::{Outputs, Tiles};
    use crate::Real;
    use crate::{fused_residual, Result};

    pub fn run(dev: &CudaDevice) -> Result<Report> {
        let mut cases = Vec::new();
        for &n in &SIZES {
            // Two boundary rows when there is room, like a 1-D Dirichlet problem.
            let n_pde = if n > 2 { n - 2 } else { n };
            cases.push(case::<f64>(dev, n, n_pde, "f64", [1e-12, 1e-12])?);
            cases.push(case::<f32>(dev, n, n_pde, "f32", [1e-5, 1e-4])?);
        }
        Ok(Report {
            device: format!("{:?}", Device::Cuda(dev.clone())),
            cases,
        })
    }

    fn to_f64<T: WithDType>(v: &[T]) -> Vec<f64> {
        v.iter().map(|x| x.to_f64()).collect()
    }

    fn case<T: WithDType + DeviceRepr + Real>(
        dev: &CudaDevice,
        n: usize,
        n_pde: usize,
        name: &'static str,
        [tol, op_tol]: [f64; 2],
    ) -> Result<CaseReport> {
        let suffix = name;
        let mut rng = SplitMix(0x5eed ^ n as u64);
        let tiles = Tiles::new(n, n_pde);
        let outputs = Outputs::ALL;
        let len = tiles.output_offsets(outputs).len;
        let mut gen =
            |k: usize| -> Vec<T> { (0..k).map(|_| T::from_f64(rng.next_f64())).collect() };
        let jets = gen(3 * n);
        let mut consts = gen(5 * n);
        // Weights ≥ 0 as in the loss.
        for w in &mut consts[4 * n..] {
            *w = T::from_f64(w.to_f64().abs());
        }
        let grad = gen(len);

        // CPU reference.
        let mut out_cpu = vec![T::from_f64(0.0); len];
        forward(&jets, &consts, tiles, outputs, &mut out_cpu);
        let mut dj_cpu = vec![T::from_f64(0.0); 3 * n];
        backward(&jets, &consts, &grad, tiles, outputs, &mut dj_cpu);

        // Raw kernels on NaN-poisoned outputs.
        let jets_d = dev.clone_htod(&jets)?;
        let consts_d = dev.clone_htod(&consts)?;
        let grad_d = dev.clone_htod(&grad)?;
        let mut out_d = dev.clone_htod(&vec![T::from_f64(f64::NAN); len])?;
        launch_forward(
            dev,
            &jets_d.slice(..),
            &consts_d.slice(..),
            &mut out_d,
            tiles,
            outputs,
            suffix,
        )?;
        let mut dj_d = dev.clone_htod(&vec![T::from_f64(f64::NAN); 3 * n])?;
        launch_backward(
            dev,
            &jets_d.slice(..),
            &consts_d.slice(..),
            &grad_d.slice(..),
            &mut dj_d,
            tiles,
            outputs,
            suffix,
        )?;
        let out_gpu = dev.clone_dtoh(&out_d)?;
        let dj_gpu = dev.clone_dtoh(&dj_d)?;
        let (fwd_err, fwd_bad, fwd_same) = compare(&to_f64(&out_gpu), &to_f64(&out_cpu));
        let (bwd_err, bwd_bad, bwd_same) = compare(&to_f64(&dj_gpu), &to_f64(&dj_cpu));

        // Tensor level: the CustomOp on the device, through candle autograd, against the CPU.
        let op_err = {
            let run = |device: &Device| -> Result<(Vec<f64>, Vec<f64>)> {
                let j = Var::from_tensor(&Tensor::from_slice(&jets, (3, n), device)?)?;
                let c = Tensor::from_slice(&consts, (5, n), device)?;
                let f = fused_residual(j.as_tensor(), &c, n_pde, Outputs::LOSS)?;
                let mut loss = f.pde_loss()?;
                if let Some(bc) = f.bc_loss()? {
                    loss = (loss + bc)?;
                }
                let g = loss.backward()?;
                let dj = g.get(j.as_tensor()).expect("jets take part in the loss");
                let cpu = |t: &Tensor| -> Result<Vec<f64>> {
                    Ok(t.to_dtype(DType::F64)?
                        .to_device(&Device::Cpu)?
                        .flatten_all()?
                        .to_vec1()?)
                };
                let mut v = cpu(&loss)?;
                v.extend(cpu(&f.partials)?);
                Ok((v, cpu(dj)?))
            };
            let (lg, dg) = run(&Device::Cuda(dev.clone()))?;
            let (lc, dc) = run(&Device::Cpu)?;
            let (e1, b1, _) = compare(&lg, &lc);
            let (e2, b2, _) = compare(&dg, &dc);
            if b1 + b2 > 0 {
                f64::INFINITY
            } else {
                e1.max(e2)
            }
        };

        Ok(CaseReport {
            dtype: name,
            n,
            n_pde,
            fwd_unwritten: fwd_bad,
            bwd_unwritten: bwd_bad,
            fwd_rel_err: fwd_err,
            bwd_rel_err: bwd_err,
            bit_identical: fwd_same && bwd_same,
            op_rel_err: op_err,
            tol,
            op_tol,
        })
    }
}
