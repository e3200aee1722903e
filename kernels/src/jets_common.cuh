// The per-element math of the network's Taylor-mode jets and of Adam, for the GPU engine and the
// host alike: every function is __host__ __device__, so build.rs compiles this header for the host
// (host/operator_host.cpp) and crates/model/tests/device_math.rs holds it to the CPU engine
// (crates/model/src/cpu_engine/tile.rs), which computes the same formulas in the same order.
//
// Forward, hidden layer with pre-activation streams (z, z', z'') (bias already on z):
//   t = tanh z,  s1 = 1 − t²,  s2 = −2 t s1,  a = t,  a' = s1 z',  a'' = s2 z'² + s1 z''
// Backward (ā the adjoint of a stream, s3 = s1 (4t² − 2 s1)):
//   z̄ = ā s1 + ā' s2 z' + ā'' (s3 z'² + s2 z''),  z̄' = ā' s1 + 2 ā'' s2 z',  z̄'' = ā'' s1
// The products a·b + c that the CPU engine fuses (it runs its FMA path on every x86-64 machine
// with AVX2) are fma() here too, so only tanh itself may differ (the CPU engine's branch-free
// tanh and the libm/CUDA one agree to a few ulp).
#pragma once
#include <math.h>

#ifndef MSPINN_HOST_DEVICE
#define MSPINN_HOST_DEVICE __host__ __device__ __forceinline__
#endif

// tanh, σ', σ'' of a pre-activation.
template <typename T> MSPINN_HOST_DEVICE void tanh_derivs(T z, T *t, T *s1, T *s2) {
    *t = tanh(z);
    *s1 = fma(-*t, *t, T(1));
    *s2 = T(-2) * *t * *s1;
}

// σ''' of tanh from t, s1.
template <typename T> MSPINN_HOST_DEVICE T tanh_s3(T t, T s1) {
    return s1 * (T(4) * t * t - T(2) * s1);
}

// A hidden layer's activation jets from its pre-activation streams.
template <typename T>
MSPINN_HOST_DEVICE void jet_tanh_fwd(T z0, T z1, T z2, T *a0, T *a1, T *a2, T *s1, T *s2) {
    T t;
    tanh_derivs(z0, &t, s1, s2);
    *a0 = t;
    *a1 = *s1 * z1;
    *a2 = fma(*s2 * z1, z1, *s1 * z2);
}

// Layer 0 from the input streams (x, 1, 0): z = x w + b, z' = w, z'' = 0.
template <typename T>
MSPINN_HOST_DEVICE void jet_tanh_fwd_input(T x, T w, T b, T *a0, T *a1, T *a2, T *s1, T *s2) {
    T t;
    tanh_derivs(fma(x, w, b), &t, s1, s2);
    *a0 = t;
    *a1 = *s1 * w;
    *a2 = *s2 * w * w;
}

// A hidden layer's pre-activation adjoints from its activation adjoints.
template <typename T>
MSPINN_HOST_DEVICE void jet_tanh_bwd(T ab0, T ab1, T ab2, T t, T s1, T s2, T z1, T z2, T *zb0,
                                     T *zb1, T *zb2) {
    const T s3 = tanh_s3(t, s1);
    *zb0 = ab0 * s1 + ab1 * s2 * z1 + ab2 * fma(s3 * z1, z1, s2 * z2);
    *zb1 = ab1 * s1 + T(2) * ab2 * s2 * z1;
    *zb2 = ab2 * s1;
}

// Layer 0's adjoints (z' = w, z'' = 0); z̄'' is not needed (no weight multiplies it).
template <typename T>
MSPINN_HOST_DEVICE void jet_tanh_bwd_input(T ab0, T ab1, T ab2, T t, T s1, T s2, T w, T *zb0,
                                           T *zb1) {
    const T s3 = tanh_s3(t, s1);
    *zb0 = ab0 * s1 + ab1 * s2 * w + ab2 * s3 * w * w;
    *zb1 = ab1 * s1 + T(2) * ab2 * s2 * w;
}

// The constants of one Adam step t (β1, β2, their complements, the bias corrections, lr, ε̂),
// computed once on the host in f64 and rounded to T, as the CPU's Adam does.
template <typename T> struct AdamConsts {
    T b1, b2, ob1, ob2, scale_m, scale_v, lr, eps;
};

// One Adam update of one parameter: m, v, θ in place.
template <typename T>
MSPINN_HOST_DEVICE void adam_update(const AdamConsts<T> &c, T g, T *theta, T *m, T *v) {
    const T mi = *m * c.b1 + g * c.ob1;
    const T vi = *v * c.b2 + g * g * c.ob2;
    *m = mi;
    *v = vi;
    *theta -= (mi * c.scale_m * c.lr) / (sqrt(vi * c.scale_v) + c.eps);
}

// Layer 0's gradient terms of one (row, unit): z̄ (the bias's) and z̄ x + z̄' (the weight's: the
// input streams are (x, 1, 0)). Summed over rows they are ∂L/∂b0 and ∂L/∂w0.
template <typename T>
MSPINN_HOST_DEVICE void input_grad_terms(T ab0, T ab1, T ab2, T t, T s1, T s2, T w, T x, T *gb,
                                         T *gw) {
    T zb0, zb1;
    jet_tanh_bwd_input(ab0, ab1, ab2, t, s1, s2, w, &zb0, &zb1);
    *gb = zb0;
    *gw = fma(zb0, x, zb1);
}

// One entry of a hidden layer's Jacobian row: ∂r_i/∂W[o][p] = Σ_c z̄_c h_c over the three jet
// channels (value, d/dx, d²/dx²), summed left to right without FMA so the host and device agree
// bit for bit; the batch gradient's gemm sums the same products over rows.
template <typename T>
MSPINN_HOST_DEVICE T jacobian_weight(T zb0, T zb1, T zb2, T h0, T h1, T h2) {
    return zb0 * h0 + zb1 * h1 + zb2 * h2;
}
