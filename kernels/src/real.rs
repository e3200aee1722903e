//! The one float type of mspinn's own arithmetic (f32 or f64): the operator, the fused op's host
//! arithmetic and the CPU engine all compute in a `Real`, and the elementwise math they need.
//!
//! The hot elementwise work is tanh of every pre-activation, once per step. libm's `tanh` is a
//! scalar call (~25–40 cycles) that LLVM cannot vectorise, which at N_c = 1024 on the 4×40 net
//! costs about as much as all the matmuls. So tanh is written here from operations LLVM turns
//! into SIMD code (FMA, select, integer shifts; no calls, no branches):
//!
//! ```text
//! |x| ≥ 1/4:  tanh x = sign(x) (1 − e)/(1 + e),  e = exp(−2|x|)  (|x| clamped to 40: e < 2⁻¹¹⁵)
//! |x| < 1/4:  tanh x = x Σ_k c_k x^{2k},  c_0 = 1, (2k+1) c_k = −Σ_{i+j=k−1} c_i c_j  (from t' = 1 − t²)
//! exp r:      r = n ln2 + ρ, |ρ| ≤ ln2/2 (Cody–Waite, two-part ln2), e^ρ by its Taylor series,
//!             2ⁿ put straight into the exponent bits.
//! ```
//!
//! In f64 the series is cut where the next term is below 2⁻⁵⁶ relative (Taylor of e^ρ to ρ¹³,
//! tanh to x²³), so both branches are within ~2 ulp of the correctly rounded value; in f32 the
//! same formulas with shorter series. sin and softplus (not the paper's activation) use the
//! standard library's scalar functions.

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

use candle_core::WithDType;

/// f32 or f64: what mspinn's hand-written arithmetic computes in.
pub trait Real:
    faer::traits::ComplexField
    + WithDType
    + Copy
    + Debug
    + Default
    + Send
    + Sync
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    const HALF: Self;
    fn of(x: f64) -> Self;
    /// a·b + c, fused when the caller was compiled with FMA.
    fn fma<const FMA: bool>(a: Self, b: Self, c: Self) -> Self;
    /// tanh by the branch-free formulas in the module docs.
    fn tanh_v<const FMA: bool>(self) -> Self;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
    /// softplus(x) = max(x, 0) + ln(1 + e^{−|x|}) and logistic(x) = 1/(1 + e^{−x}).
    fn softplus(self) -> Self;
    fn logistic(self) -> Self;
}

/// tanh's Taylor coefficients c_k (of x^{2k+1}) from (2k+1) c_k = −Σ_{i+j=k−1} c_i c_j.
const fn tanh_series<const K: usize>() -> [f64; K] {
    let mut c = [0.0; K];
    c[0] = 1.0;
    let mut k = 1;
    while k < K {
        let mut s = 0.0;
        let mut i = 0;
        while i < k {
            s += c[i] * c[k - 1 - i];
            i += 1;
        }
        c[k] = -s / (2 * k + 1) as f64;
        k += 1;
    }
    c
}

const TANH_C64: [f64; 12] = tanh_series::<12>();
const TANH_C32: [f64; 6] = tanh_series::<6>();
/// Below this |x| the odd series is used, above it the exp formula.
const TANH_SPLIT: f64 = 0.25;

macro_rules! real_impl {
    ($t:ty, $mant:expr, $bias:expr, $exp_terms:expr, $tanh_c:expr, $ln2_hi:expr, $ln2_lo:expr) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const HALF: Self = 0.5;
            #[inline(always)]
            fn of(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn fma<const FMA: bool>(a: Self, b: Self, c: Self) -> Self {
                if FMA {
                    a.mul_add(b, c)
                } else {
                    a * b + c
                }
            }
            #[inline(always)]
            fn tanh_v<const FMA: bool>(self) -> Self {
                let ax = self.abs().min(40.0);
                // e = exp(−2|x|) with −2|x| ∈ [−80, 0].
                let y = -2.0 * ax;
                const MAGIC: $t = 1.5 * (1u64 << $mant) as $t;
                let kf = Self::fma::<FMA>(y, std::f64::consts::LOG2_E as $t, MAGIC);
                let n = kf - MAGIC;
                // ln 2 = HI + LO with HI's low bits zero, so n·HI is exact for |n| ≤ 116.
                const LN2_HI: $t = $ln2_hi;
                const LN2_LO: $t = $ln2_lo;
                let r = Self::fma::<FMA>(-n, LN2_LO, Self::fma::<FMA>(-n, LN2_HI, y));
                // e^r by Horner on 1/j!.
                let mut p: $t = 1.0;
                let mut j = $exp_terms;
                while j >= 1 {
                    p = Self::fma::<FMA>(p, r * (1.0 / j as $t), 1.0);
                    j -= 1;
                }
                let scale = <$t>::from_bits((kf.to_bits().wrapping_add($bias)) << $mant);
                let e = p * scale;
                let big = (1.0 - e) / (1.0 + e);
                // The odd series in x² for small |x|.
                let x2 = ax * ax;
                let c = $tanh_c;
                let mut q: $t = c[c.len() - 1] as $t;
                let mut k = c.len() - 1;
                while k > 0 {
                    k -= 1;
                    q = Self::fma::<FMA>(q, x2, c[k] as $t);
                }
                let small = ax * q;
                let m = if ax < TANH_SPLIT as $t { small } else { big };
                m.copysign(self)
            }
            #[inline(always)]
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            #[inline(always)]
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            #[inline(always)]
            fn softplus(self) -> Self {
                self.max(0.0) + (-self.abs()).exp().ln_1p()
            }
            #[inline(always)]
            fn logistic(self) -> Self {
                1.0 / (1.0 + (-self).exp())
            }
        }
    };
}

// fdlibm's split of ln 2 for f64; Cephes' for f32. The literals are the published decimal forms of
// binary constants (each rounds to exactly the intended float), kept digit for digit so they can be
// checked against the sources.
#[allow(clippy::excessive_precision)]
const LN2_SPLIT_F64: (f64, f64) = (
    6.931_471_803_691_238_164_9e-1,
    1.908_214_929_270_587_700_02e-10,
);
#[allow(clippy::excessive_precision)]
const LN2_SPLIT_F32: (f32, f32) = (0.693_359_375, -2.121_944_4e-4);
real_impl!(
    f64,
    52,
    1023u64,
    13,
    TANH_C64,
    LN2_SPLIT_F64.0,
    LN2_SPLIT_F64.1
);
real_impl!(
    f32,
    23,
    127u32,
    7,
    TANH_C32,
    LN2_SPLIT_F32.0,
    LN2_SPLIT_F32.1
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tanh_within_a_few_ulp() {
        let mut worst64 = 0.0f64;
        let mut worst32 = 0.0f64;
        let mut x = -30.0f64;
        while x < 30.0 {
            for xx in [x, x * 1e-3, x * 1e-9] {
                let want = xx.tanh();
                let got = xx.tanh_v::<false>();
                let got_fma = xx.tanh_v::<true>();
                let ulp = f64::EPSILON * want.abs().max(f64::MIN_POSITIVE);
                worst64 = worst64
                    .max((got - want).abs() / ulp)
                    .max((got_fma - want).abs() / ulp);
                let w32 = (xx as f32 as f64).tanh();
                let g32 = (xx as f32).tanh_v::<false>() as f64;
                let ulp32 = f32::EPSILON as f64 * w32.abs().max(f32::MIN_POSITIVE as f64);
                worst32 = worst32.max((g32 - w32).abs() / ulp32);
            }
            x += 0.000_731;
        }
        assert!(worst64 <= 4.0, "f64 tanh error {worst64} ulp");
        assert!(worst32 <= 4.0, "f32 tanh error {worst32} ulp");
        assert_eq!(0.0f64.tanh_v::<false>(), 0.0);
        assert_eq!(1e3f64.tanh_v::<false>(), 1.0);
        assert_eq!((-1e3f64).tanh_v::<false>(), -1.0);
    }
}
