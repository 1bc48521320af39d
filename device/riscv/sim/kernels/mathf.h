/* Single-precision exp for the kernels (no libm in the image). */
#ifndef JOULE_DEVICE_RISCV_SIM_KERNELS_MATHF_H_
#define JOULE_DEVICE_RISCV_SIM_KERNELS_MATHF_H_

/* e^x: x = n ln 2 + r with |r| <= ln 2 / 2 (Cody-Waite, two-part ln 2),
 * e^r by a degree-6 Taylor polynomial (error below 2e-7 relative there),
 * times 2^n built in the exponent bits. Below -87.3 it returns 0, above
 * 88.7 infinity; NaN stays NaN. */
float joule_expf(float x);

#endif /* JOULE_DEVICE_RISCV_SIM_KERNELS_MATHF_H_ */
