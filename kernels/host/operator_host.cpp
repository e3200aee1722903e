// The CUDA header's per-row operator compiled for the host (build.rs, with the cc crate), so that
// tests/operator_header.rs can hold it to the Rust operator (src/operator.rs) bit for bit. The
// CUDA qualifiers are defined away; -ffp-contract=off matches the kernels' -fmad=false.
#define __host__
#define __device__
#define __forceinline__ inline
#include "../src/residual_common.cuh"

extern "C" {
double mspinn_host_residual_f64(const double *jets, const double *consts, size_t n, size_t i) {
    return residual_row<double>(jets, consts, n, i);
}
float mspinn_host_residual_f32(const float *jets, const float *consts, size_t n, size_t i) {
    return residual_row<float>(jets, consts, n, i);
}
double mspinn_host_loss_term_f64(double w, double r) { return loss_term<double>(w, r); }
float mspinn_host_loss_term_f32(float w, float r) { return loss_term<float>(w, r); }
double mspinn_host_loss_slope_f64(double w, double r) { return loss_slope<double>(w, r); }
float mspinn_host_loss_slope_f32(float w, float r) { return loss_slope<float>(w, r); }
}
