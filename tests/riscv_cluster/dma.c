// The data mover core's DMA: a 1-D copy of 4 KiB from DRAM into the TCDM
// (timed from issue to the completed id), a 2-D copy of an 8 x 4 block
// out of a 16-column matrix, and a read of a destination before its
// transfer completed (old bytes). Core 0 checks the copies after the
// barrier and emits what it found.
#include "snitch.h"

static double src[512];       // DRAM
static u32 matrix[16 * 8];    // DRAM, 16 columns
static volatile u32 report[4];

#define DST1 ((double*)(TCDM + 0))
#define DST2 ((u32*)(TCDM + 8192))
#define DST3 ((u32*)(TCDM + 12288))

int main(u32 id) {
  if (id == 8) {
    for (int i = 0; i < 512; ++i) src[i] = i * 0.5;
    for (int i = 0; i < 16 * 8; ++i) matrix[i] = i;
    DMSRC((u32)src);
    DMDST((u32)DST1);
    const u32 t0 = cycle();
    const u32 first = dmcpy_1d(4096);
    while (dma_completed() < first) {
    }
    report[0] = cycle() - t0;
    report[1] = first;
    // Columns 4..7 of every row: 16-byte rows, 64 bytes apart.
    DMSRC((u32)(matrix + 4));
    DMDST((u32)DST2);
    DMSTR(64, 16);
    DMREP(8);
    const u32 second = dmcpy_2d(16);
    while (dma_completed() < second) {
    }
    // A transfer started but not waited for: the TCDM still holds zeros.
    DST3[0] = 0;
    DMSRC((u32)matrix);
    DMDST((u32)DST3);
    dmcpy_1d(64);
    report[2] = DST3[0] + 1000 * DST3[1];
    while (dma_completed() < second + 1) {
    }
    report[3] = DST3[1];
  }
  barrier();
  if (id == 0) {
    double sum = 0;
    for (int i = 0; i < 512; ++i) sum += DST1[i];
    u32 out[4 + 32 + 1];
    for (int i = 0; i < 4; ++i) out[i] = report[i];
    for (int i = 0; i < 32; ++i) out[4 + i] = DST2[i];
    out[36] = (u32)sum;
    emit(out, sizeof(out));
  }
  return 0;
}
