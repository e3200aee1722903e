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

// The jets' and Adam's per-element math (jets_common.cuh).
#include "../src/jets_common.cuh"

extern "C" {
// out = [a, a', a'', σ', σ''].
void mspinn_host_jet_tanh_fwd_f64(double z0, double z1, double z2, double *out) {
    jet_tanh_fwd<double>(z0, z1, z2, &out[0], &out[1], &out[2], &out[3], &out[4]);
}
void mspinn_host_jet_tanh_fwd_f32(float z0, float z1, float z2, float *out) {
    jet_tanh_fwd<float>(z0, z1, z2, &out[0], &out[1], &out[2], &out[3], &out[4]);
}
// ab = [ā, ā', ā''], fwd = [t, σ', σ''], out = [z̄, z̄', z̄''].
void mspinn_host_jet_tanh_bwd_f64(const double *ab, const double *fwd, double z1, double z2,
                                  double *out) {
    jet_tanh_bwd<double>(ab[0], ab[1], ab[2], fwd[0], fwd[1], fwd[2], z1, z2, &out[0], &out[1],
                         &out[2]);
}
void mspinn_host_jet_tanh_bwd_f32(const float *ab, const float *fwd, float z1, float z2,
                                  float *out) {
    jet_tanh_bwd<float>(ab[0], ab[1], ab[2], fwd[0], fwd[1], fwd[2], z1, z2, &out[0], &out[1],
                        &out[2]);
}
// c = [β1, β2, 1−β1, 1−β2, 1/(1−β1^t), 1/(1−β2^t), lr, ε̂]; state = [θ, m, v], updated in place.
void mspinn_host_adam_update_f64(const double *c, double g, double *state) {
    const AdamConsts<double> k = {c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]};
    adam_update<double>(k, g, &state[0], &state[1], &state[2]);
}
void mspinn_host_adam_update_f32(const float *c, float g, float *state) {
    const AdamConsts<float> k = {c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]};
    adam_update<float>(k, g, &state[0], &state[1], &state[2]);
}
// out = [a, a', a'', σ', σ''] of layer 0 at input x.
void mspinn_host_jet_tanh_fwd_input_f64(double x, double w, double b, double *out) {
    jet_tanh_fwd_input<double>(x, w, b, &out[0], &out[1], &out[2], &out[3], &out[4]);
}
void mspinn_host_jet_tanh_fwd_input_f32(float x, float w, float b, float *out) {
    jet_tanh_fwd_input<float>(x, w, b, &out[0], &out[1], &out[2], &out[3], &out[4]);
}
// out = [z̄, z̄ x + z̄'] of layer 0.
void mspinn_host_input_grad_terms_f64(const double *ab, const double *fwd, double w, double x,
                                      double *out) {
    input_grad_terms<double>(ab[0], ab[1], ab[2], fwd[0], fwd[1], fwd[2], w, x, &out[0], &out[1]);
}
void mspinn_host_input_grad_terms_f32(const float *ab, const float *fwd, float w, float x,
                                      float *out) {
    input_grad_terms<float>(ab[0], ab[1], ab[2], fwd[0], fwd[1], fwd[2], w, x, &out[0], &out[1]);
}
// out = Σ_c z̄_c h_c over the three channels (a hidden layer's Jacobian entry).
double mspinn_host_jacobian_weight_f64(const double *zb, const double *h) {
    return jacobian_weight<double>(zb[0], zb[1], zb[2], h[0], h[1], h[2]);
}
float mspinn_host_jacobian_weight_f32(const float *zb, const float *h) {
    return jacobian_weight<float>(zb[0], zb[1], zb[2], h[0], h[1], h[2]);
}
}
