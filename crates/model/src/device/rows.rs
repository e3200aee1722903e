//! Per-row quantities of the device step: the residuals r_i and the Jacobian rows ∂r_i/∂θ.
//!
//! The Jacobian is the loss gradient's reverse sweep with two changes: the output adjoint is the
//! unweighted residual's (z̄ = (c0, c1, c2) per row, which is the first 3n values of the constants
//! buffer, so no seed kernel runs), and instead of the gemms that sum ∂W over the rows, one kernel
//! writes every row's outer products into J ([`Kernel::JacobianWeights`]) and another copies the
//! per-row bias and layer-0 terms into their columns ([`Kernel::ScatterRows`]). The adjoint
//! propagation H̄ = W·Z̄ is the same gemm as the gradient's.

use super::backend::{Backend, BufId, Kernel};
use super::step::{at, DeviceStep};
use crate::{LossTerms, Real, Result};

impl<T: Real, B: Backend<T>> DeviceStep<T, B> {
    /// The unweighted residual of every row at the device's θ into `out` (n values), and the
    /// loss terms of the same forward pass.
    pub fn residuals_resident(&mut self, out: &mut Vec<T>) -> Result<LossTerms> {
        let p = self.plan.clone();
        self.forward(&p)?;
        let terms = self.loss(&p)?;
        let r = self.backend.alloc(p.n)?;
        self.backend.launch(&Kernel::Residuals {
            jets: at(self.z[p.z_len.len() - 1]),
            consts: at(self.consts),
            n: p.n,
            out: at(r),
        })?;
        out.resize(p.n, T::ZERO);
        self.backend.download(at(r), out)?;
        self.backend.free(r)?;
        Ok(terms)
    }

    /// J = ∂r/∂θ of the step's rows at the device's θ, into a new backend buffer holding the
    /// row-major (n × N_p) matrix, columns in flat parameter order.
    pub fn jacobian_resident(&mut self) -> Result<BufId> {
        let p = self.plan.clone();
        let (n, dims, nl, np) = (p.n, &p.dims, p.dims.len() - 1, p.n_params);
        let jac = self.backend.alloc(n * np)?;
        self.forward(&p)?;
        let mut zb = at(self.consts);
        let mut cur = 0;
        for l in (1..nl).rev() {
            let (din, dout) = (dims[l], dims[l + 1]);
            let (ow, ob) = p.offsets[l];
            if l < nl - 1 {
                self.hidden_adjoints(&p, l, zb)?;
            }
            self.backend.launch(&Kernel::JacobianWeights {
                h: at(self.a[l - 1]),
                bar: zb,
                n,
                din,
                dout,
                jac: at(jac),
                ldj: np,
                col: ow,
            })?;
            self.backend.launch(&Kernel::ScatterRows {
                src: zb,
                n,
                d: dout,
                jac: at(jac),
                ldj: np,
                col: ob,
            })?;
            let next = at(self.bar[cur]);
            self.propagate_adjoints(&p, l, zb, next)?;
            zb = next;
            cur = 1 - cur;
        }
        let d1 = dims[1];
        let (ow0, ob0) = p.offsets[0];
        self.input_adjoints(&p, zb)?;
        for (src, col) in [(self.ew, ow0), (self.zb0, ob0)] {
            self.backend.launch(&Kernel::ScatterRows {
                src: at(src),
                n,
                d: d1,
                jac: at(jac),
                ldj: np,
                col,
            })?;
        }
        Ok(jac)
    }
}
