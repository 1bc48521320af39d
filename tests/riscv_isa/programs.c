// Compiled C as a kernel is: loops, calls, int and float arithmetic the
// compiler chose (not hand-picked instructions). A float matrix product,
// a double dot product, an integer sort and a CRC.
#include "sig.h"

static float a[16][16], b[16][16], c[16][16];
static double x[64];
static u32 keys[200];

static u32 crc32(const unsigned char* p, u32 n) {
  u32 crc = 0xffffffffu;
  for (u32 i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
  }
  return ~crc;
}

int main(void) {
  u32 seed = 12345;
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      seed = seed * 1103515245u + 12345u;
      a[i][j] = (float)(int)(seed >> 16) / 1024.0f - 16.0f;
      b[j][i] = (float)(seed & 0xff) * 0.01f;
    }
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      float s = 0;
      for (int k = 0; k < 16; ++k) s += a[i][k] * b[k][j];
      c[i][j] = s;
    }
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      u32 v;
      __builtin_memcpy(&v, &c[i][j], 4);
      put(v);
    }
  double dot = 0;
  for (int i = 0; i < 64; ++i) x[i] = 1.0 / (i + 1);
  for (int i = 0; i < 64; ++i) dot += x[i] * x[63 - i];
  u64 bits;
  __builtin_memcpy(&bits, &dot, 8);
  put64(bits);
  for (int i = 0; i < 200; ++i) {
    seed = seed * 1664525u + 1013904223u;
    keys[i] = seed;
  }
  for (int i = 1; i < 200; ++i) {  // Insertion sort.
    u32 k = keys[i];
    int j = i - 1;
    while (j >= 0 && keys[j] > k) {
      keys[j + 1] = keys[j];
      --j;
    }
    keys[j + 1] = k;
  }
  for (int i = 0; i < 200; i += 7) put(keys[i]);
  put(crc32((const unsigned char*)keys, sizeof(keys)));
  return flush();
}
