//! [`Backend`] on the host: a reference gemm (the plain triple loop, cuBLAS's column-major
//! convention taken literally) and the kernels as loops over the host-compiled
//! `__host__ __device__` functions of the CUDA headers (`mspinn_kernels::host_header`) and the
//! fused residual's host arithmetic (`mspinn_kernels::host`). Slow and simple on purpose: it is
//! what CI runs the device step through, so every transpose, offset and launch is exercised.

use mspinn_kernels::host_header::HeaderFloat;
use mspinn_kernels::{Outputs, Tiles};

use super::backend::{At, Backend, BufId, Gemm, Kernel};
use crate::{ModelError, Real, Result};

/// Buffers in host memory.
#[derive(Default)]
pub struct HostBackend<T> {
    bufs: Vec<Vec<T>>,
}

impl<T: Real> HostBackend<T> {
    pub fn new() -> Self {
        Self { bufs: Vec::new() }
    }

    fn range(&self, at: At, len: usize) -> Result<std::ops::Range<usize>> {
        let have = self.bufs.get(at.buf).map_or(0, Vec::len);
        if at.offset + len > have {
            return Err(ModelError::Shape {
                what: format!("device buffer {}", at.buf),
                expected: format!("at least {} values", at.offset + len),
                got: have.to_string(),
            });
        }
        Ok(at.offset..at.offset + len)
    }

    /// A copy of `len` values at `at` (kernels read their inputs through copies, so an output
    /// may live in the same buffer as an input).
    fn read(&self, at: At, len: usize) -> Result<Vec<T>> {
        let r = self.range(at, len)?;
        Ok(self.bufs[at.buf][r].to_vec())
    }

    fn write(&mut self, at: At, values: &[T]) -> Result<()> {
        let r = self.range(at, values.len())?;
        self.bufs[at.buf][r].copy_from_slice(values);
        Ok(())
    }
}

impl<T: Real + HeaderFloat> Backend<T> for HostBackend<T> {
    fn alloc(&mut self, len: usize) -> Result<BufId> {
        self.bufs.push(vec![T::ZERO; len]);
        Ok(self.bufs.len() - 1)
    }

    fn upload(&mut self, to: At, host: &[T]) -> Result<()> {
        self.write(to, host)
    }

    fn download(&mut self, from: At, host: &mut [T]) -> Result<()> {
        let r = self.range(from, host.len())?;
        host.copy_from_slice(&self.bufs[from.buf][r]);
        Ok(())
    }

    fn gemm(&mut self, g: &Gemm<T>) -> Result<()> {
        // Stored shapes: A is (m × k) or, transposed, (k × m); likewise B.
        let (ar, ac) = if g.trans_a { (g.k, g.m) } else { (g.m, g.k) };
        let (br, bc) = if g.trans_b { (g.n, g.k) } else { (g.k, g.n) };
        for (what, rows, cols, ld) in [
            ("A", ar, ac, g.lda),
            ("B", br, bc, g.ldb),
            ("C", g.m, g.n, g.ldc),
        ] {
            if ld < rows.max(1) || cols == 0 && rows == 0 {
                return Err(ModelError::Shape {
                    what: format!("gemm {what}"),
                    expected: format!("leading dimension ≥ {rows}"),
                    got: ld.to_string(),
                });
            }
        }
        let span = |rows: usize, cols: usize, ld: usize| {
            if cols == 0 {
                0
            } else {
                ld * (cols - 1) + rows
            }
        };
        let a = self.read(g.a, span(ar, ac, g.lda))?;
        let b = self.read(g.b, span(br, bc, g.ldb))?;
        let mut c = self.read(g.c, span(g.m, g.n, g.ldc))?;
        let a_at = |i: usize, p: usize| {
            if g.trans_a {
                a[p + i * g.lda]
            } else {
                a[i + p * g.lda]
            }
        };
        let b_at = |p: usize, j: usize| {
            if g.trans_b {
                b[j + p * g.ldb]
            } else {
                b[p + j * g.ldb]
            }
        };
        for j in 0..g.n {
            for i in 0..g.m {
                let mut acc = T::ZERO;
                for p in 0..g.k {
                    acc += a_at(i, p) * b_at(p, j);
                }
                let ci = &mut c[i + j * g.ldc];
                // β = 0 overwrites (NaN-safe), as cuBLAS specifies.
                *ci = if g.beta == T::ZERO {
                    g.alpha * acc
                } else {
                    g.alpha * acc + g.beta * *ci
                };
            }
        }
        self.write(g.c, &c)
    }

    fn hand_to_candle(
        &mut self,
        buf: BufId,
        rows: usize,
        cols: usize,
    ) -> Result<candle_core::Tensor> {
        let r = self.range(At::new(buf, 0), rows * cols)?;
        let data = std::mem::take(&mut self.bufs[buf]);
        let t = candle_core::Tensor::from_slice(&data[r], (rows, cols), &candle_core::Device::Cpu)?;
        Ok(t)
    }

    fn free(&mut self, buf: BufId) -> Result<()> {
        self.range(At::new(buf, 0), 0)?;
        self.bufs[buf] = Vec::new();
        Ok(())
    }

    // Each loop body is one CUDA thread's work, indexed as the kernel indexes it.
    #[allow(clippy::needless_range_loop)]
    fn launch(&mut self, k: &Kernel<T>) -> Result<()> {
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
                let (x, w, b) = (self.read(x, n)?, self.read(w, d)?, self.read(b, d)?);
                let m = n * d;
                let (mut av, mut sv) = (vec![T::ZERO; 3 * m], vec![T::ZERO; 2 * m]);
                for i in 0..n {
                    for j in 0..d {
                        let o = T::jet_tanh_fwd_input(x[i], w[j], b[j]);
                        let k = i * d + j;
                        (av[k], av[m + k], av[2 * m + k], sv[k], sv[m + k]) =
                            (o[0], o[1], o[2], o[3], o[4]);
                    }
                }
                self.write(a, &av)?;
                self.write(s, &sv)
            }
            Kernel::BiasJets { z, b, n, d, a, s } => {
                let m = n * d;
                let (mut zv, b) = (self.read(z, 3 * m)?, self.read(b, d)?);
                let (mut av, mut sv) = (vec![T::ZERO; 3 * m], vec![T::ZERO; 2 * m]);
                for k in 0..m {
                    zv[k] += b[k % d];
                    let o = T::jet_tanh_fwd(zv[k], zv[m + k], zv[2 * m + k]);
                    (av[k], av[m + k], av[2 * m + k], sv[k], sv[m + k]) =
                        (o[0], o[1], o[2], o[3], o[4]);
                }
                self.write(z, &zv)?;
                self.write(a, &av)?;
                self.write(s, &sv)
            }
            Kernel::AddBias { u, b, n } => {
                let (mut uv, b) = (self.read(u, n)?, self.read(b, 1)?);
                uv.iter_mut().for_each(|v| *v += b[0]);
                self.write(u, &uv)
            }
            Kernel::ResidualLoss {
                jets,
                consts,
                n,
                n_pde,
                partials,
            } => {
                let tiles = Tiles::new(n, n_pde);
                let (j, c) = (self.read(jets, 3 * n)?, self.read(consts, 5 * n)?);
                let mut out = vec![T::ZERO; tiles.n_tiles];
                mspinn_kernels::host::forward(&j, &c, tiles, Outputs::LOSS, &mut out);
                self.write(partials, &out)
            }
            Kernel::ResidualSeed {
                jets,
                consts,
                n,
                n_pde,
                seed,
            } => {
                let tiles = Tiles::new(n, n_pde);
                let (j, c) = (self.read(jets, 3 * n)?, self.read(consts, 5 * n)?);
                let ones = vec![T::ONE; tiles.n_tiles];
                let mut dj = vec![T::ZERO; 3 * n];
                mspinn_kernels::host::backward(&j, &c, &ones, tiles, Outputs::LOSS, &mut dj);
                self.write(seed, &dj)
            }
            Kernel::HiddenAdjoints { bar, a, s, z, n, d } => {
                let m = n * d;
                let mut bv = self.read(bar, 3 * m)?;
                let (t, sv, zv) = (self.read(a, m)?, self.read(s, 2 * m)?, self.read(z, 3 * m)?);
                for k in 0..m {
                    let o = T::jet_tanh_bwd(
                        [bv[k], bv[m + k], bv[2 * m + k]],
                        [t[k], sv[k], sv[m + k]],
                        zv[m + k],
                        zv[2 * m + k],
                    );
                    (bv[k], bv[m + k], bv[2 * m + k]) = (o[0], o[1], o[2]);
                }
                self.write(bar, &bv)
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
                let m = n * d;
                let bv = self.read(bar, 3 * m)?;
                let (t, sv) = (self.read(a, m)?, self.read(s, 2 * m)?);
                let (w, x) = (self.read(w, d)?, self.read(x, n)?);
                let (mut zbv, mut ewv) = (vec![T::ZERO; m], vec![T::ZERO; m]);
                for i in 0..n {
                    for j in 0..d {
                        let k = i * d + j;
                        let o = T::input_grad_terms(
                            [bv[k], bv[m + k], bv[2 * m + k]],
                            [t[k], sv[k], sv[m + k]],
                            w[j],
                            x[i],
                        );
                        (zbv[k], ewv[k]) = (o[0], o[1]);
                    }
                }
                self.write(zb, &zbv)?;
                self.write(ew, &ewv)
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
                let (mh, mb) = (n * din, n * dout);
                let (hv, bv) = (self.read(h, 3 * mh)?, self.read(bar, 3 * mb)?);
                let r = self.range(jac, (n.max(1) - 1) * ldj + col + din * dout)?;
                let jv = &mut self.bufs[jac.buf][r];
                for i in 0..n {
                    for o in 0..dout {
                        let b = i * dout + o;
                        let zb = [bv[b], bv[mb + b], bv[2 * mb + b]];
                        for p in 0..din {
                            let a = i * din + p;
                            jv[i * ldj + col + o * din + p] =
                                T::jacobian_weight(zb, [hv[a], hv[mh + a], hv[2 * mh + a]]);
                        }
                    }
                }
                Ok(())
            }
            Kernel::ScatterRows {
                src,
                n,
                d,
                jac,
                ldj,
                col,
            } => {
                let sv = self.read(src, n * d)?;
                let r = self.range(jac, (n.max(1) - 1) * ldj + col + d)?;
                let jv = &mut self.bufs[jac.buf][r];
                for k in 0..n * d {
                    jv[(k / d) * ldj + col + k % d] = sv[k];
                }
                Ok(())
            }
            Kernel::Residuals {
                jets,
                consts,
                n,
                out,
            } => {
                let (j, c) = (self.read(jets, 3 * n)?, self.read(consts, 5 * n)?);
                let r: Vec<T> = (0..n)
                    .map(|i| {
                        mspinn_kernels::operator::residual(
                            j[i],
                            j[n + i],
                            j[2 * n + i],
                            c[i],
                            c[n + i],
                            c[2 * n + i],
                            c[3 * n + i],
                        )
                    })
                    .collect();
                self.write(out, &r)
            }
            Kernel::Fill { out, len, value } => self.write(out, &vec![value; len]),
            Kernel::Adam {
                theta,
                m,
                v,
                g,
                len,
                consts,
            } => {
                let (mut th, mut mv, mut vv, gv) = (
                    self.read(theta, len)?,
                    self.read(m, len)?,
                    self.read(v, len)?,
                    self.read(g, len)?,
                );
                for i in 0..len {
                    let mut st = [th[i], mv[i], vv[i]];
                    T::adam_update(consts, gv[i], &mut st);
                    (th[i], mv[i], vv[i]) = (st[0], st[1], st[2]);
                }
                self.write(theta, &th)?;
                self.write(m, &mv)?;
                self.write(v, &vv)
            }
        }
    }
}
