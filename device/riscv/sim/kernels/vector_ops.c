#include "vector_ops.h"

#include "mathf.h"

static float bits_float(uint32_t b) {
  union {
    uint32_t u;
    float f;
  } v = {b};
  return v.f;
}

int rmsnorm(u32 id, const struct JouleLaunch* l) {
  const u32 rows = l->args[0], dim = l->args[1];
  const float* x = (const float*)l->args[2];
  const float* w = (const float*)l->args[3];
  float* out = (float*)l->args[4];
  const float eps = bits_float(l->args[5]);
  if (dim == 0) return JOULE_BAD_SHAPE;
  for (u32 r = id; id < 8 && r < rows; r += 8) {
    const float* xr = x + r * dim;
    float ss = 0;
    for (u32 i = 0; i < dim; ++i) ss += xr[i] * xr[i];
    ss = ss / dim + eps;
    float root;
    asm("fsqrt.s %0, %1" : "=f"(root) : "f"(ss));
    const float scale = 1.0f / root;
    for (u32 i = 0; i < dim; ++i) out[r * dim + i] = w[i] * (scale * xr[i]);
  }
  return JOULE_OK;
}

int swiglu(u32 id, const struct JouleLaunch* l) {
  const u32 n = l->args[0];
  float* h = (float*)l->args[1];
  const float* g = (const float*)l->args[2];
  if (id >= 8) return JOULE_OK;
  const u32 per = (n + 7) / 8, lo = id * per, hi = lo + per < n ? lo + per : n;
  for (u32 i = lo; i < hi; ++i) {
    const float v = h[i];
    h[i] = v * (1.0f / (1.0f + joule_expf(-v))) * g[i];
  }
  return JOULE_OK;
}

int rope(u32 id, const struct JouleLaunch* l) {
  const u32 vectors = l->args[0], hs = l->args[1];
  float* data = (float*)l->args[2];
  const float* cosv = (const float*)l->args[3];
  const float* sinv = (const float*)l->args[4];
  if (hs == 0 || hs % 2) return JOULE_BAD_SHAPE;
  for (u32 v = id; id < 8 && v < vectors; v += 8) {
    float* x = data + v * hs;
    const float* c = cosv + v * (hs / 2);
    const float* s = sinv + v * (hs / 2);
    for (u32 d = 0; d < hs; d += 2) {
      const float x0 = x[d], x1 = x[d + 1];
      x[d] = x0 * c[d / 2] - x1 * s[d / 2];
      x[d + 1] = x0 * s[d / 2] + x1 * c[d / 2];
    }
  }
  return JOULE_OK;
}

#define KEY_BLOCK 16
#define MAX_HEAD 256
/* Each core's running output, in the TCDM: 1 KiB, its whole stack. */
#define SCRATCH(id) ((float*)(TCDM + 96u * 1024u + (id)*MAX_HEAD * 4u))

/* One (query, head): scores for a block of keys, the block's maximum, the
 * running sum and output rescaled once per block (FlashAttention-2). */
static void attend_one(const float* q, const float* k, const float* v,
                       float* out, u32 n, u32 hs, u32 stride, float scale,
                       float* acc) {
  float s[KEY_BLOCK];
  float m = -__builtin_inff(), sum = 0;
  for (u32 d = 0; d < hs; ++d) acc[d] = 0;
  for (u32 j0 = 0; j0 < n; j0 += KEY_BLOCK) {
    const u32 nb = n - j0 < KEY_BLOCK ? n - j0 : KEY_BLOCK;
    float mb = m;
    for (u32 j = 0; j < nb; ++j) {
      const float* kj = k + (j0 + j) * stride;
      float dot = 0;
      for (u32 d = 0; d < hs; ++d) dot += q[d] * kj[d];
      s[j] = dot * scale;
      if (s[j] > mb) mb = s[j];
    }
    const float c = joule_expf(m - mb);
    sum *= c;
    for (u32 d = 0; d < hs; ++d) acc[d] *= c;
    for (u32 j = 0; j < nb; ++j) {
      const float p = joule_expf(s[j] - mb);
      const float* vj = v + (j0 + j) * stride;
      sum += p;
      for (u32 d = 0; d < hs; ++d) acc[d] += p * vj[d];
    }
    m = mb;
  }
  for (u32 d = 0; d < hs; ++d) out[d] = acc[d] / sum;
}

int attention(u32 id, const struct JouleLaunch* l) {
  const u32 queries = l->args[0], heads = l->args[1], kv_heads = l->args[2],
            hs = l->args[3];
  const float* q = (const float*)l->args[4];
  const float* k = (const float*)l->args[5];
  const float* v = (const float*)l->args[6];
  float* out = (float*)l->args[7];
  const float scale = bits_float(l->args[8]);
  const u32 first = l->args[9];
  if (hs == 0 || hs > MAX_HEAD || kv_heads == 0 || heads % kv_heads) {
    return JOULE_BAD_SHAPE;
  }
  const u32 group = heads / kv_heads, stride = kv_heads * hs;
  for (u32 p = id; id < 8 && p < queries * heads; p += 8) {
    const u32 i = p / heads, h = p % heads;
    attend_one(q + (i * heads + h) * hs, k + (h / group) * hs,
               v + (h / group) * hs, out + (i * heads + h) * hs, first + i + 1,
               hs, stride, scale, SCRATCH(id));
  }
  return JOULE_OK;
}

int dma_copy(u32 id, const struct JouleLaunch* l) {
  const u32 count = l->args[0];
  const u32* list = (const u32*)l->args[1];
  if (id != 8) return JOULE_OK;
  for (u32 i = 0; i < count; ++i) {
    const u32* t = list + 3 * i;
    if (t[2] != 0) dma_wait(dma_1d((void*)t[1], (const void*)t[0], t[2]));
  }
  return JOULE_OK;
}
