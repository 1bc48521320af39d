// A cluster benchmark for the ISS's speed with its timing model on
// (bench:iss_bench): C = A x B in double precision, 32 x 32 x 32 in the
// TCDM, rows split across the 8 compute cores, plain loads and fmadd (no
// SSR or FREP), repeated; the data mover core only meets the barriers.
typedef unsigned int u32;
#define TCDM ((volatile char*)0x10000000)
#define NN 32
#define A ((double*)(TCDM + 0))
#define B ((double*)(TCDM + 8 * NN * NN + 8))
#define C ((double*)(TCDM + 16 * NN * NN + 16))
#define REPEATS 40

static inline void barrier(void) { asm volatile("csrr x0, 0x7C2" ::: "memory"); }

int main(u32 id) {
  if (id == 0) {
    for (int i = 0; i < NN * NN; ++i) {
      A[i] = (i % 7) * 0.25;
      B[i] = (i % 5) * 0.5;
    }
  }
  barrier();
  if (id < 8) {
    for (int r = 0; r < REPEATS; ++r) {
      for (int i = id; i < NN; i += 8) {
        for (int j = 0; j < NN; ++j) {
          double s = 0;
          for (int k = 0; k < NN; ++k) s += A[i * NN + k] * B[k * NN + j];
          C[i * NN + j] = s;
        }
      }
    }
  }
  barrier();
  return 0;
}
