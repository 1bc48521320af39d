#ifndef JOULE_DEVICE_FPGA_KERNEL_FORWARD_KERNEL_H_
#define JOULE_DEVICE_FPGA_KERNEL_FORWARD_KERNEL_H_

// Joule's FPGA transformer kernel, in synthesizable HLS C++ (after
// HLSTransform's `forward`): one token of a Llama 2 model with int8 Q8_0
// weights, fixed-size on-chip buffers, m_axi weight/KV ports and s_axilite
// scalars. It is ordinary C++ as well (HLS C simulation): g++ ignores the
// pragmas, and the device driver runs it on the buffers' memory when the
// board is emulated.
//
// Unlike HLSTransform's kernel, the shape is a template parameter (one
// bitstream per shape), quantization groups may be any size dividing the
// tensors (not only 64), and the attention buffer holds SEQ_LEN positions
// (theirs holds 257 and overflows past position 256).
//
// Weights: int8 values times fp32 group scales, dequantized on the fly and
// multiplied with fp32 activations in the CPU reference engine's order, so
// greedy tokens equal the reference's on version 2 checkpoints.

#include <cmath>
#include <cstdint>

namespace joule::fpga {

template <int DIM_, int HIDDEN_, int LAYERS_, int HEADS_, int KV_HEADS_,
          int VOCAB_, int SEQ_LEN_, int GS_>
struct Shape {
  static constexpr int DIM = DIM_, HIDDEN = HIDDEN_, LAYERS = LAYERS_,
                       HEADS = HEADS_, KV_HEADS = KV_HEADS_, VOCAB = VOCAB_,
                       SEQ_LEN = SEQ_LEN_, GS = GS_;
  static constexpr int HEAD_SIZE = DIM / HEADS;
  static constexpr int KV_DIM = KV_HEADS * HEAD_SIZE;
  static constexpr int KV_MUL = HEADS / KV_HEADS;
  // Offsets (in int8 values) of each tensor in the packed weight buffer, in
  // llama2.c's version 2 order: embedding, then wq, wk, wv, wo, w1, w2, w3
  // for all layers, then the classifier if not shared.
  static constexpr int64_t EMB = 0;
  static constexpr int64_t WQ = EMB + int64_t{VOCAB} * DIM;
  static constexpr int64_t WK = WQ + int64_t{LAYERS} * DIM * DIM;
  static constexpr int64_t WV = WK + int64_t{LAYERS} * KV_DIM * DIM;
  static constexpr int64_t WO = WV + int64_t{LAYERS} * KV_DIM * DIM;
  static constexpr int64_t W1 = WO + int64_t{LAYERS} * DIM * DIM;
  static constexpr int64_t W2 = W1 + int64_t{LAYERS} * HIDDEN * DIM;
  static constexpr int64_t W3 = W2 + int64_t{LAYERS} * DIM * HIDDEN;
  static constexpr int64_t CLS = W3 + int64_t{LAYERS} * HIDDEN * DIM;
  // fp32 norm weights: attention norms, ffn norms, final norm.
  static constexpr int NORM_ATT = 0, NORM_FFN = LAYERS * DIM,
                       NORM_FINAL = 2 * LAYERS * DIM;
  static constexpr int NORMS = 2 * LAYERS * DIM + DIM;
};

// out[ROWS] = W[ROWS x COLS] x[COLS]; W's int8 values start at `w` (a flat
// index into `q8`), its scales at w / GS in `scales`. Groups may straddle
// rows: the scale index is taken from the flat index.
template <int GS, int ROWS, int COLS>
void MatVec(float out[ROWS], const float x[COLS], const int8_t* q8,
            const float* scales, int64_t w) {
ROWS_LOOP:
  for (int i = 0; i < ROWS; ++i) {
    float val = 0.0f;
  COLS_LOOP:
    for (int j = 0; j < COLS; ++j) {
#pragma HLS PIPELINE II = 1
      const int64_t idx = w + int64_t{i} * COLS + j;
      const float wf = q8[idx] * scales[idx / GS];
      val += wf * x[j];
    }
    out[i] = val;
  }
}

template <int N>
void RmsNorm(float out[N], const float x[N], const float* weight) {
  float ss = 0.0f;
SUM:
  for (int j = 0; j < N; ++j) {
#pragma HLS PIPELINE II = 1
    ss += x[j] * x[j];
  }
  ss /= N;
  ss += 1e-5f;
  ss = 1.0f / sqrtf(ss);
SCALE:
  for (int j = 0; j < N; ++j) {
#pragma HLS PIPELINE II = 1
    out[j] = weight[j] * (ss * x[j]);
  }
}

// One token at position `pos` (0 <= pos < SEQ_LEN): reads and extends this
// sequence's KV cache (SEQ_LEN x LAYERS x KV_DIM floats each, position-
// major as the CPU engine) and writes VOCAB logits to `out`.
template <class S>
void Forward(const int8_t* q8, const float* scales, const float* norms,
             int shared_classifier, int token, int pos, float* key_cache,
             float* value_cache, float* out) {
#pragma HLS INTERFACE m_axi port = q8 offset = slave bundle = \
    gmem0 max_read_burst_length = 256
#pragma HLS INTERFACE m_axi port = scales offset = slave bundle = gmem1
#pragma HLS INTERFACE m_axi port = norms offset = slave bundle = gmem1
#pragma HLS INTERFACE m_axi port = key_cache offset = slave bundle = gmem2
#pragma HLS INTERFACE m_axi port = value_cache offset = slave bundle = gmem3
#pragma HLS INTERFACE m_axi port = out offset = slave bundle = gmem1
#pragma HLS INTERFACE s_axilite port = shared_classifier
#pragma HLS INTERFACE s_axilite port = token
#pragma HLS INTERFACE s_axilite port = pos
#pragma HLS INTERFACE s_axilite port = return
  static float x[S::DIM], xb[S::DIM], xb2[S::DIM], q[S::DIM];
  static float hb[S::HIDDEN], hb2[S::HIDDEN];
  static float k[S::KV_DIM], v[S::KV_DIM];
  static float att[S::SEQ_LEN];
#pragma HLS ARRAY_PARTITION variable = x cyclic factor = 16
#pragma HLS ARRAY_PARTITION variable = xb cyclic factor = 16
#pragma HLS ARRAY_PARTITION variable = hb cyclic factor = 16
  constexpr int D = S::DIM, HS = S::HEAD_SIZE, KV = S::KV_DIM;
  constexpr int64_t STRIDE = int64_t{S::LAYERS} * KV;  // One position.

EMBED:
  for (int j = 0; j < D; ++j) {
#pragma HLS PIPELINE II = 1
    const int64_t idx = S::EMB + int64_t{token} * D + j;
    x[j] = q8[idx] * scales[idx / S::GS];
  }

LAYERS_LOOP:
  for (int l = 0; l < S::LAYERS; ++l) {
    RmsNorm<D>(xb, x, norms + S::NORM_ATT + l * D);
    MatVec<S::GS, D, D>(q, xb, q8, scales, S::WQ + int64_t{l} * D * D);
    MatVec<S::GS, KV, D>(k, xb, q8, scales, S::WK + int64_t{l} * KV * D);
    MatVec<S::GS, KV, D>(v, xb, q8, scales, S::WV + int64_t{l} * KV * D);

  ROPE:
    for (int i = 0; i < D; i += 2) {
      const int head_dim = i % HS;
      const float freq = 1.0f / powf(10000.0f, head_dim / (float)HS);
      const float val = pos * freq;
      const float fcr = cosf(val), fci = sinf(val);
      const float q0 = q[i], q1 = q[i + 1];
      q[i] = q0 * fcr - q1 * fci;
      q[i + 1] = q0 * fci + q1 * fcr;
      if (i < KV) {
        const float k0 = k[i], k1 = k[i + 1];
        k[i] = k0 * fcr - k1 * fci;
        k[i + 1] = k0 * fci + k1 * fcr;
      }
    }
  STORE_KV:
    for (int i = 0; i < KV; ++i) {
#pragma HLS PIPELINE II = 1
      key_cache[pos * STRIDE + int64_t{l} * KV + i] = k[i];
      value_cache[pos * STRIDE + int64_t{l} * KV + i] = v[i];
    }

  HEADS_LOOP:
    for (int h = 0; h < S::HEADS; ++h) {
      const float* qh = q + h * HS;
      const int64_t off = int64_t{l} * KV + (h / S::KV_MUL) * HS;
    SCORES:
      for (int t = 0; t <= pos; ++t) {
        float score = 0.0f;
        for (int i = 0; i < HS; ++i) {
#pragma HLS PIPELINE II = 1
          score += qh[i] * key_cache[t * STRIDE + off + i];
        }
        att[t] = score / sqrtf(HS);
      }
      float max_val = att[0];
      for (int t = 1; t <= pos; ++t)
        max_val = att[t] > max_val ? att[t] : max_val;
      float sum = 0.0f;
    SOFTMAX:
      for (int t = 0; t <= pos; ++t) {
        att[t] = expf(att[t] - max_val);
        sum += att[t];
      }
      for (int t = 0; t <= pos; ++t) att[t] /= sum;
      float* xbh = xb + h * HS;
      for (int i = 0; i < HS; ++i) xbh[i] = 0.0f;
    WEIGHTED_SUM:
      for (int t = 0; t <= pos; ++t) {
        const float a = att[t];
        for (int i = 0; i < HS; ++i) {
#pragma HLS PIPELINE II = 1
          xbh[i] += a * value_cache[t * STRIDE + off + i];
        }
      }
    }
    MatVec<S::GS, D, D>(xb2, xb, q8, scales, S::WO + int64_t{l} * D * D);
    for (int i = 0; i < D; ++i) x[i] += xb2[i];

    RmsNorm<D>(xb, x, norms + S::NORM_FFN + l * D);
    MatVec<S::GS, S::HIDDEN, D>(hb, xb, q8, scales,
                                S::W1 + int64_t{l} * S::HIDDEN * D);
    MatVec<S::GS, S::HIDDEN, D>(hb2, xb, q8, scales,
                                S::W3 + int64_t{l} * S::HIDDEN * D);
  SWIGLU:
    for (int i = 0; i < S::HIDDEN; ++i) {
#pragma HLS PIPELINE II = 1
      float val = hb[i];
      val *= (1.0f / (1.0f + expf(-val)));
      hb[i] = val * hb2[i];
    }
    MatVec<S::GS, D, S::HIDDEN>(xb, hb, q8, scales,
                                S::W2 + int64_t{l} * D * S::HIDDEN);
    for (int i = 0; i < D; ++i) x[i] += xb[i];
  }
  RmsNorm<D>(x, x, norms + S::NORM_FINAL);
  MatVec<S::GS, S::VOCAB, D>(out, x, q8, scales,
                             shared_classifier ? S::EMB : S::CLS);
}

}  // namespace joule::fpga

#endif  // JOULE_DEVICE_FPGA_KERNEL_FORWARD_KERNEL_H_
