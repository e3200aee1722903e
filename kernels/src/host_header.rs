//! The CUDA headers' per-element functions compiled for the host (build.rs, the `cc` crate), as
//! safe Rust functions: what the tests hold to the Rust operator, the CPU engine's jet math and
//! the host Adam, so the device math is proven where no GPU is. Present when build.rs found a
//! C++ compiler (`cfg(mspinn_host_header)`); without one every function panics naming the
//! missing compiler, so the tests fail with that message rather than pass untested.

/// Whether build.rs compiled the headers for the host.
pub const AVAILABLE: bool = cfg!(mspinn_host_header);

#[cfg(not(mspinn_host_header))]
#[allow(clippy::missing_safety_doc)]
mod ffi {
    fn missing() -> ! {
        panic!(
            "kernels/build.rs could not compile the CUDA headers for the host (no C++ compiler; see \
             the build warning): install g++ and rebuild"
        )
    }
    pub unsafe fn mspinn_host_jet_tanh_fwd_f64(_: f64, _: f64, _: f64, _: *mut f64) {
        missing()
    }
    pub unsafe fn mspinn_host_jet_tanh_fwd_f32(_: f32, _: f32, _: f32, _: *mut f32) {
        missing()
    }
    pub unsafe fn mspinn_host_jet_tanh_bwd_f64(
        _: *const f64,
        _: *const f64,
        _: f64,
        _: f64,
        _: *mut f64,
    ) {
        missing()
    }
    pub unsafe fn mspinn_host_jet_tanh_bwd_f32(
        _: *const f32,
        _: *const f32,
        _: f32,
        _: f32,
        _: *mut f32,
    ) {
        missing()
    }
    pub unsafe fn mspinn_host_adam_update_f64(_: *const f64, _: f64, _: *mut f64) {
        missing()
    }
    pub unsafe fn mspinn_host_jet_tanh_fwd_input_f64(_: f64, _: f64, _: f64, _: *mut f64) {
        missing()
    }
    pub unsafe fn mspinn_host_jet_tanh_fwd_input_f32(_: f32, _: f32, _: f32, _: *mut f32) {
        missing()
    }
    pub unsafe fn mspinn_host_input_grad_terms_f64(
        _: *const f64,
        _: *const f64,
        _: f64,
        _: f64,
        _: *mut f64,
    ) {
        missing()
    }
    pub unsafe fn mspinn_host_input_grad_terms_f32(
        _: *const f32,
        _: *const f32,
        _: f32,
        _: f32,
        _: *mut f32,
    ) {
        missing()
    }
    pub unsafe fn mspinn_host_adam_update_f32(_: *const f32, _: f32, _: *mut f32) {
        missing()
    }
    pub unsafe fn mspinn_host_jacobian_weight_f64(_: *const f64, _: *const f64) -> f64 {
        missing()
    }
    pub unsafe fn mspinn_host_jacobian_weight_f32(_: *const f32, _: *const f32) -> f32 {
        missing()
    }
}

#[cfg(mspinn_host_header)]
mod ffi {
    extern "C" {
        pub fn mspinn_host_jet_tanh_fwd_f64(z0: f64, z1: f64, z2: f64, out: *mut f64);
        pub fn mspinn_host_jet_tanh_fwd_f32(z0: f32, z1: f32, z2: f32, out: *mut f32);
        pub fn mspinn_host_jet_tanh_bwd_f64(
            ab: *const f64,
            fwd: *const f64,
            z1: f64,
            z2: f64,
            out: *mut f64,
        );
        pub fn mspinn_host_jet_tanh_bwd_f32(
            ab: *const f32,
            fwd: *const f32,
            z1: f32,
            z2: f32,
            out: *mut f32,
        );
        pub fn mspinn_host_adam_update_f64(c: *const f64, g: f64, state: *mut f64);
        pub fn mspinn_host_jet_tanh_fwd_input_f64(x: f64, w: f64, b: f64, out: *mut f64);
        pub fn mspinn_host_jet_tanh_fwd_input_f32(x: f32, w: f32, b: f32, out: *mut f32);
        pub fn mspinn_host_input_grad_terms_f64(
            ab: *const f64,
            fwd: *const f64,
            w: f64,
            x: f64,
            out: *mut f64,
        );
        pub fn mspinn_host_input_grad_terms_f32(
            ab: *const f32,
            fwd: *const f32,
            w: f32,
            x: f32,
            out: *mut f32,
        );
        pub fn mspinn_host_adam_update_f32(c: *const f32, g: f32, state: *mut f32);
        pub fn mspinn_host_jacobian_weight_f64(zb: *const f64, h: *const f64) -> f64;
        pub fn mspinn_host_jacobian_weight_f32(zb: *const f32, h: *const f32) -> f32;
    }
}

/// The header's float types.
pub trait HeaderFloat: Copy + Default {
    fn jet_tanh_fwd(z0: Self, z1: Self, z2: Self) -> [Self; 5];
    fn jet_tanh_bwd(ab: [Self; 3], fwd: [Self; 3], z1: Self, z2: Self) -> [Self; 3];
    fn adam_update(consts: [Self; 8], g: Self, state: &mut [Self; 3]);
    /// Layer 0's (a, a', a'', σ', σ'') at input x.
    fn jet_tanh_fwd_input(x: Self, w: Self, b: Self) -> [Self; 5];
    /// Layer 0's gradient terms [z̄, z̄ x + z̄'] from ā, (t, σ', σ''), w and x.
    fn input_grad_terms(ab: [Self; 3], fwd: [Self; 3], w: Self, x: Self) -> [Self; 2];
    /// A hidden layer's Jacobian entry Σ_c z̄_c h_c over the three jet channels.
    fn jacobian_weight(zb: [Self; 3], h: [Self; 3]) -> Self;
}

macro_rules! header_float {
    ($t:ty, $fwd:ident, $bwd:ident, $adam:ident, $fwd_in:ident, $grad_in:ident, $jac:ident) => {
        impl HeaderFloat for $t {
            fn jet_tanh_fwd(z0: $t, z1: $t, z2: $t) -> [$t; 5] {
                let mut out = [0.0; 5];
                // SAFETY: `out` holds the five values the function writes.
                unsafe { ffi::$fwd(z0, z1, z2, out.as_mut_ptr()) };
                out
            }
            fn jet_tanh_bwd(ab: [$t; 3], fwd: [$t; 3], z1: $t, z2: $t) -> [$t; 3] {
                let mut out = [0.0; 3];
                // SAFETY: three values read from each input, three written.
                unsafe { ffi::$bwd(ab.as_ptr(), fwd.as_ptr(), z1, z2, out.as_mut_ptr()) };
                out
            }
            fn adam_update(consts: [$t; 8], g: $t, state: &mut [$t; 3]) {
                // SAFETY: eight constants read, three state values updated in place.
                unsafe { ffi::$adam(consts.as_ptr(), g, state.as_mut_ptr()) };
            }
            fn jet_tanh_fwd_input(x: $t, w: $t, b: $t) -> [$t; 5] {
                let mut out = [0.0; 5];
                // SAFETY: `out` holds the five values the function writes.
                unsafe { ffi::$fwd_in(x, w, b, out.as_mut_ptr()) };
                out
            }
            fn input_grad_terms(ab: [$t; 3], fwd: [$t; 3], w: $t, x: $t) -> [$t; 2] {
                let mut out = [0.0; 2];
                // SAFETY: three values read from each input, two written.
                unsafe { ffi::$grad_in(ab.as_ptr(), fwd.as_ptr(), w, x, out.as_mut_ptr()) };
                out
            }
            fn jacobian_weight(zb: [$t; 3], h: [$t; 3]) -> $t {
                // SAFETY: three values read from each input.
                unsafe { ffi::$jac(zb.as_ptr(), h.as_ptr()) }
            }
        }
    };
}
header_float!(
    f64,
    mspinn_host_jet_tanh_fwd_f64,
    mspinn_host_jet_tanh_bwd_f64,
    mspinn_host_adam_update_f64,
    mspinn_host_jet_tanh_fwd_input_f64,
    mspinn_host_input_grad_terms_f64,
    mspinn_host_jacobian_weight_f64
);
header_float!(
    f32,
    mspinn_host_jet_tanh_fwd_f32,
    mspinn_host_jet_tanh_bwd_f32,
    mspinn_host_adam_update_f32,
    mspinn_host_jet_tanh_fwd_input_f32,
    mspinn_host_input_grad_terms_f32,
    mspinn_host_jacobian_weight_f32
);
