//! [`Backend`] on an NVIDIA GPU (feature `cuda`): buffers are cudarc slices on candle's device
//! and stream, the gemm is cuBLAS (candle's handle, the argument convention [`Gemm`] already
//! speaks), the elementwise kernels are the PTX of `kernels/src/engine.cu` and the fused residual
//! of `residual.cu`, launched grid-stride ([`super::plan::grid_stride`]).
//!
//! The same sequence runs through [`super::HostBackend`] in CI; this file is the thin part that
//! only a GPU can run (`scripts/gpu-check.sh`). Not yet run on a GPU.

use std::sync::Arc;

use candle_core::cuda_backend::cudarc::cublas::sys::cublasOperation_t;
use candle_core::cuda_backend::cudarc::cublas::{CudaBlas, Gemm as CublasGemm, GemmConfig};
use candle_core::cuda_backend::cudarc::driver::{
    CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg, ValidAsZeroBits,
};
use candle_core::cuda_backend::{CudaDType, WrapErr};
use candle_core::CudaDevice;
use mspinn_kernels::{Outputs, Tiles};

use super::backend::{At, Backend, BufId, Gemm, Kernel};
use super::plan::grid_stride;
use crate::{ModelError, Real, Result};

/// Module name under which candle caches the engine's PTX.
const MODULE: &str = "mspinn_engine";
/// Threads per block of the elementwise kernels, and the grid cap (a few waves of an H100's
/// 132 multiprocessors; any cap is correct, the kernels are grid-stride).
const THREADS: usize = 256;
const MAX_BLOCKS: usize = 132 * 8;

/// Buffers and handles on one GPU.
pub struct CudaBackend<T> {
    dev: CudaDevice,
    blas: Arc<CudaBlas>,
    bufs: Vec<Option<CudaSlice<T>>>,
    /// dL/d(partial) = 1 for the fused residual's backward, sized for the last row count.
    ones_tiles: Option<CudaSlice<T>>,
}

impl<T> CudaBackend<T> {
    pub fn new(dev: &CudaDevice) -> Self {
        Self {
            dev: dev.clone(),
            blas: dev.cublas_handle(),
            bufs: Vec::new(),
            ones_tiles: None,
        }
    }
}

fn missing(buf: BufId) -> ModelError {
    ModelError::Shape {
        what: format!("device buffer {buf}"),
        expected: "an allocated buffer".into(),
        got: "none".into(),
    }
}

fn op(trans: bool) -> cublasOperation_t {
    if trans {
        cublasOperation_t::CUBLAS_OP_T
    } else {
        cublasOperation_t::CUBLAS_OP_N
    }
}

fn int(v: usize, what: &str) -> Result<i32> {
    i32::try_from(v).map_err(|_| ModelError::Shape {
        what: format!("cuBLAS {what}"),
        expected: "at most 2³¹ − 1".into(),
        got: v.to_string(),
    })
}

fn launch_config(len: usize) -> LaunchConfig {
    let (threads, blocks) = grid_stride(len, THREADS, MAX_BLOCKS);
    LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (threads as u32, 1, 1),
        shared_mem_bytes: 0,
    }
}

impl<T> CudaBackend<T>
where
    T: Real + DeviceRepr + ValidAsZeroBits + CudaDType,
    CudaBlas: CublasGemm<T>,
{
    fn suffix() -> &'static str {
        if <T as candle_core::WithDType>::DTYPE == candle_core::DType::F32 {
            "f32"
        } else {
            "f64"
        }
    }

    fn buf(&self, id: BufId) -> Result<&CudaSlice<T>> {
        self.bufs
            .get(id)
            .and_then(Option::as_ref)
            .ok_or_else(|| missing(id))
    }

    /// Takes a buffer out of the arena (to write it while others are read), or errs.
    fn take(&mut self, id: BufId) -> Result<CudaSlice<T>> {
        self.bufs
            .get_mut(id)
            .and_then(Option::take)
            .ok_or_else(|| missing(id))
    }

    fn put(&mut self, id: BufId, s: CudaSlice<T>) {
        self.bufs[id] = Some(s);
    }
}

impl<T> Backend<T> for CudaBackend<T>
where
    T: Real + DeviceRepr + ValidAsZeroBits + CudaDType,
    CudaBlas: CublasGemm<T>,
{
    fn alloc(&mut self, len: usize) -> Result<BufId> {
        let s = self.dev.alloc_zeros::<T>(len.max(1))?;
        self.bufs.push(Some(s));
        Ok(self.bufs.len() - 1)
    }

    fn upload(&mut self, to: At, host: &[T]) -> Result<()> {
        let mut dst = self.take(to.buf)?;
        let r = {
            let mut view = dst.slice_mut(to.offset..to.offset + host.len());
            self.dev.memcpy_htod(host, &mut view)
        };
        self.put(to.buf, dst);
        Ok(r?)
    }

    fn download(&mut self, from: At, host: &mut [T]) -> Result<()> {
        let src = self.buf(from.buf)?;
        let view = src.slice(from.offset..from.offset + host.len());
        let v: Vec<T> = self.dev.clone_dtoh(&view)?;
        host.copy_from_slice(&v);
        Ok(())
    }

    fn gemm(&mut self, g: &Gemm<T>) -> Result<()> {
        if g.c.buf == g.a.buf || g.c.buf == g.b.buf {
            return Err(ModelError::Shape {
                what: "gemm buffers".into(),
                expected: "C in a buffer of its own".into(),
                got: format!("C in buffer {}", g.c.buf),
            });
        }
        let cfg = GemmConfig {
            transa: op(g.trans_a),
            transb: op(g.trans_b),
            m: int(g.m, "m")?,
            n: int(g.n, "n")?,
            k: int(g.k, "k")?,
            alpha: g.alpha,
            lda: int(g.lda, "lda")?,
            ldb: int(g.ldb, "ldb")?,
            beta: g.beta,
            ldc: int(g.ldc, "ldc")?,
        };
        let mut c = self.take(g.c.buf)?;
        let r = (|| -> Result<()> {
            let a = self.buf(g.a.buf)?.slice(g.a.offset..);
            let b = self.buf(g.b.buf)?.slice(g.b.offset..);
            let mut cv = c.slice_mut(g.c.offset..);
            // SAFETY: the shapes and leading dimensions describe matrices inside these views
            // (the step's plan sizes every buffer; the host backend checks the same spans).
            unsafe { self.blas.gemm(cfg, &a, &b, &mut cv) }.w()?;
            Ok(())
        })();
        self.put(g.c.buf, c);
        r
    }

    fn launch(&mut self, k: &Kernel<T>) -> Result<()> {
        match *k {
            Kernel::ResidualLoss {
                jets,
                consts,
                n,
                n_pde,
                partials,
            } => {
                let tiles = Tiles::new(n, n_pde);
                let mut out = self.take(partials.buf)?;
                let r = (|| -> Result<()> {
                    let j = self.buf(jets.buf)?.slice(jets.offset..jets.offset + 3 * n);
                    let c = self
                        .buf(consts.buf)?
                        .slice(consts.offset..consts.offset + 5 * n);
                    mspinn_kernels::cuda::launch_forward(
                        &self.dev,
                        &j,
                        &c,
                        &mut out,
                        tiles,
                        Outputs::LOSS,
                        Self::suffix(),
                    )?;
                    Ok(())
                })();
                self.put(partials.buf, out);
                r
            }
            Kernel::ResidualSeed {
                jets,
                consts,
                n,
                n_pde,
                seed,
            } => {
                let tiles = Tiles::new(n, n_pde);
                let ones = match self.ones_tiles.take() {
                    Some(o) if o.len() == tiles.n_tiles => o,
                    _ => {
                        let host = vec![T::ONE; tiles.n_tiles];
                        self.dev.clone_htod(&host[..])?
                    }
                };
                let mut dj = self.take(seed.buf)?;
                let r = (|| -> Result<()> {
                    let j = self.buf(jets.buf)?.slice(jets.offset..jets.offset + 3 * n);
                    let c = self
                        .buf(consts.buf)?
                        .slice(consts.offset..consts.offset + 5 * n);
                    let g = ones.slice(..);
                    mspinn_kernels::cuda::launch_backward(
                        &self.dev,
                        &j,
                        &c,
                        &g,
                        &mut dj,
                        tiles,
                        Outputs::LOSS,
                        Self::suffix(),
                    )?;
                    Ok(())
                })();
                self.put(seed.buf, dj);
                self.ones_tiles = Some(ones);
                r
            }
            _ => self.launch_engine(k),
        }
    }

    fn hand_to_candle(
        &mut self,
        buf: BufId,
        rows: usize,
        cols: usize,
    ) -> Result<candle_core::Tensor> {
        let len = rows * cols;
        let mut slice = self.take(buf)?;
        if slice.len() < len {
            let have = slice.len();
            self.put(buf, slice);
            return Err(ModelError::Shape {
                what: format!("device buffer {buf}"),
                expected: format!("at least {len} values"),
                got: have.to_string(),
            });
        }
        if slice.len() > len {
            // candle's storage is the whole slice: copy the prefix into an exact one.
            let mut exact = self.dev.alloc_zeros::<T>(len.max(1))?;
            self.dev.memcpy_dtod(&slice.slice(..len), &mut exact)?;
            slice = exact;
        }
        let storage =
            candle_core::cuda_backend::CudaStorage::wrap_cuda_slice(slice, self.dev.clone());
        Ok(candle_core::Tensor::from_storage(
            candle_core::Storage::Cuda(storage),
            (rows, cols),
            candle_core::op::BackpropOp::none(),
            false,
        ))
    }

    fn free(&mut self, buf: BufId) -> Result<()> {
        self.take(buf).map(drop)
    }

    fn free_bytes(&self) -> Option<u128> {
        let (free, _total) = self.dev.cuda_stream().context().mem_get_info().ok()?;
        Some(free as u128)
    }
}

impl<T> CudaBackend<T>
where
    T: Real + DeviceRepr + ValidAsZeroBits + CudaDType,
    CudaBlas: CublasGemm<T>,
{
    /// The kernels of engine.cu. Arguments are pushed as (device pointer at an offset) views
    /// and plain scalars, in the order of the kernels' parameter lists.
    fn launch_engine(&mut self, k: &Kernel<T>) -> Result<()> {
        // Outputs are taken out of the arena for the launch; inputs are read in place.
        macro_rules! func {
            ($name:expr) => {
                self.dev.get_or_load_custom_func(
                    &format!("mspinn_{}_{}", $name, Self::suffix()),
                    MODULE,
                    mspinn_kernels::ptx::ENGINE,
                )?
            };
        }
        macro_rules! view {
            ($at:expr) => {
                self.buf($at.buf)?.slice($at.offset..)
            };
        }
        match *k {
            Kernel::InputJets {
                x,
                w,
                b,
                n,
                d,
                a,
                s,
            } => {
                let f = func!("input_jets");
                let (mut ab, mut sb) = (self.take(a.buf)?, self.take(s.buf)?);
                let r = (|| -> Result<()> {
                    let (xv, wv, bv) = (view!(x), view!(w), view!(b));
                    let (mut av, mut sv) = (ab.slice_mut(a.offset..), sb.slice_mut(s.offset..));
                    let mut l = f.builder();
                    l.arg(&xv)
                        .arg(&wv)
                        .arg(&bv)
                        .arg(&n)
                        .arg(&d)
                        .arg(&mut av)
                        .arg(&mut sv);
                    // SAFETY: argument order and types match mspinn_input_jets_*; the plan sizes
                    // a (3nd), s (2nd), x (n), w and b (d).
                    unsafe { l.launch(launch_config(n * d)) }.w()?;
                    Ok(())
                })();
                self.put(a.buf, ab);
                self.put(s.buf, sb);
                r
            }
            Kernel::BiasJets { z, b, n, d, a, s } => {
                let f = func!("bias_jets");
                let (mut zb, mut ab, mut sb) =
                    (self.take(z.buf)?, self.take(a.buf)?, self.take(s.buf)?);
                let r = (|| -> Result<()> {
                    let bv = view!(b);
                    let mut zv = zb.slice_mut(z.offset..);
                    let (mut av, mut sv) = (ab.slice_mut(a.offset..), sb.slice_mut(s.offset..));
                    let mut l = f.builder();
                    l.arg(&mut zv)
                        .arg(&bv)
                        .arg(&n)
                        .arg(&d)
                        .arg(&mut av)
                        .arg(&mut sv);
                    // SAFETY: as mspinn_bias_jets_*: z (3nd), b (d), a (3nd), s (2nd).
                    unsafe { l.launch(launch_config(n * d)) }.w()?;
                    Ok(())
                })();
                self.put(z.buf, zb);
                self.put(a.buf, ab);
                self.put(s.buf, sb);
                r
            }
            Kernel::AddBias { u, b, n } => {
                let f = func!("add_bias");
                let mut ub = self.take(u.buf)?;
                let r = (|| -> Result<()> {
                    let bv = view!(b);
                    let mut uv = ub.slice_mut(u.offset..);
                    let mut l = f.builder();
                    l.arg(&mut uv).arg(&bv).arg(&n);
                    // SAFETY: as mspinn_add_bias_*: u (n), b (1).
                    unsafe { l.launch(launch_config(n)) }.w()?;
                    Ok(())
                })();
                self.put(u.buf, ub);
                r
            }
            Kernel::HiddenAdjoints { bar, a, s, z, n, d } => {
                let f = func!("hidden_adjoints");
                let mut bb = self.take(bar.buf)?;
                let r = (|| -> Result<()> {
                    let (av, sv, zv) = (view!(a), view!(s), view!(z));
                    let mut bv = bb.slice_mut(bar.offset..);
                    let mut l = f.builder();
                    l.arg(&mut bv).arg(&av).arg(&sv).arg(&zv).arg(&n).arg(&d);
                    // SAFETY: as mspinn_hidden_adjoints_*: bar, z (3nd), a (≥ nd), s (2nd).
                    unsafe { l.launch(launch_config(n * d)) }.w()?;
                    Ok(())
                })();
                self.put(bar.buf, bb);
                r
            }
            Kernel::InputAdjoints {
                bar,
                a,
                s,
                w,
                x,
                n,
                d,
                zb,
                ew,
            } => {
                let f = func!("input_adjoints");
                let (mut zbb, mut ewb) = (self.take(zb.buf)?, self.take(ew.buf)?);
                let r = (|| -> Result<()> {
                    let (bv, av, sv, wv, xv) = (view!(bar), view!(a), view!(s), view!(w), view!(x));
                    let (mut zv, mut ev) = (zbb.slice_mut(zb.offset..), ewb.slice_mut(ew.offset..));
                    let mut l = f.builder();
                    l.arg(&bv)
                        .arg(&av)
                        .arg(&sv)
                        .arg(&wv)
                        .arg(&xv)
                        .arg(&n)
                        .arg(&d);
                    l.arg(&mut zv).arg(&mut ev);
                    // SAFETY: as mspinn_input_adjoints_*: bar (3nd), a (≥ nd), s (2nd), w (d),
                    // x (n), zb and ew (nd).
                    unsafe { l.launch(launch_config(n * d)) }.w()?;
                    Ok(())
                })();
                self.put(zb.buf, zbb);
                self.put(ew.buf, ewb);
                r
            }
            Kernel::Fill { out, len, value } => {
                let f = func!("fill");
                let mut ob = self.take(out.buf)?;
                let r = (|| -> Result<()> {
                    let mut ov = ob.slice_mut(out.offset..);
                    let mut l = f.builder();
                    l.arg(&mut ov).arg(&len).arg(&value);
                    // SAFETY: as mspinn_fill_*: out (len).
                    unsafe { l.launch(launch_config(len)) }.w()?;
                    Ok(())
                })();
                self.put(out.buf, ob);
                r
            }
            Kernel::Adam {
                theta,
                m,
                v,
                g,
                len,
                consts: c,
            } => {
                let f = func!("adam");
                let (mut tb, mut mb, mut vb) =
                    (self.take(theta.buf)?, self.take(m.buf)?, self.take(v.buf)?);
                let r = (|| -> Result<()> {
                    let gv = view!(g);
                    let mut tv = tb.slice_mut(theta.offset..);
                    let mut mv = mb.slice_mut(m.offset..);
                    let mut vv = vb.slice_mut(v.offset..);
                    let mut l = f.builder();
                    l.arg(&mut tv).arg(&mut mv).arg(&mut vv).arg(&gv).arg(&len);
                    for ck in &c {
                        l.arg(ck);
                    }
                    // SAFETY: as mspinn_adam_*: θ, m, v, g (len) and the eight constants.
                    unsafe { l.launch(launch_config(len)) }.w()?;
                    Ok(())
                })();
                self.put(theta.buf, tb);
                self.put(m.buf, mb);
                self.put(v.buf, vb);
                r
            }
            Kernel::JacobianWeights {
                h,
                bar,
                n,
                din,
                dout,
                jac,
                ldj,
                col,
            } => {
                let f = func!("jacobian_weights");
                let mut jb = self.take(jac.buf)?;
                let r = (|| -> Result<()> {
                    let (hv, bv) = (view!(h), view!(bar));
                    let mut jv = jb.slice_mut(jac.offset..);
                    let mut l = f.builder();
                    l.arg(&hv).arg(&bv).arg(&n).arg(&din).arg(&dout);
                    l.arg(&mut jv).arg(&ldj).arg(&col);
                    // SAFETY: as mspinn_jacobian_weights_*: h (3n·din), bar (3n·dout), jac
                    // ((n−1)·ldj + col + din·dout).
                    unsafe { l.launch(launch_config(n * din * dout)) }.w()?;
                    Ok(())
                })();
                self.put(jac.buf, jb);
                r
            }
            Kernel::ScatterRows {
                src,
                n,
                d,
                jac,
                ldj,
                col,
            } => {
                let f = func!("scatter_rows");
                let mut jb = self.take(jac.buf)?;
                let r = (|| -> Result<()> {
                    let sv = view!(src);
                    let mut jv = jb.slice_mut(jac.offset..);
                    let mut l = f.builder();
                    l.arg(&sv).arg(&n).arg(&d).arg(&mut jv).arg(&ldj).arg(&col);
                    // SAFETY: as mspinn_scatter_rows_*: src (n·d), jac ((n−1)·ldj + col + d).
                    unsafe { l.launch(launch_config(n * d)) }.w()?;
                    Ok(())
                })();
                self.put(jac.buf, jb);
                r
            }
            Kernel::Residuals {
                jets,
                consts,
                n,
                out,
            } => {
                let f = func!("residuals");
                let mut ob = self.take(out.buf)?;
                let r = (|| -> Result<()> {
                    let (jv, cv) = (view!(jets), view!(consts));
                    let mut ov = ob.slice_mut(out.offset..);
                    let mut l = f.builder();
                    l.arg(&jv).arg(&cv).arg(&n).arg(&mut ov);
                    // SAFETY: as mspinn_residuals_*: jets (3n), consts (5n), out (n).
                    unsafe { l.launch(launch_config(n)) }.w()?;
                    Ok(())
                })();
                self.put(out.buf, ob);
                r
            }
            Kernel::ResidualLoss { .. } | Kernel::ResidualSeed { .. } => {
                unreachable!("launched by Backend::launch")
            }
        }
    }
}
