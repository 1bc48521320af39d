#ifndef JOULE_DEVICE_RISCV_SIM_ISS_SSR_H_
#define JOULE_DEVICE_RISCV_SIM_ISS_SSR_H_

#include <cstdint>

namespace joule::iss {

// One Xssr data mover (stream semantic register): the address generator
// behind ft0, ft1 or ft2 (docs/riscv_iss_sources.md section 1). Software
// writes its configuration words with scfgwi; writing a read or write
// pointer (words 24-31) starts a job of 1-4 nested loops, each element
// delivered REPEAT + 1 times (reads only). Strides are relative, as the
// hardware applies them: after an element, the pointer moves by the
// stride of the outermost loop that advanced. A job written while one
// runs waits for it (the hardware's shadow registers: one job queued).
class Ssr {
 public:
  // Configuration word `word` (snitch_ssr_addr_gen.sv's map).
  void WriteConfig(uint32_t word, uint32_t value);
  uint32_t ReadConfig(uint32_t word) const;

  bool active() const { return job_.active; }
  bool writes() const { return job_.write; }
  // The address of the next element; Advance() moves past it.
  uint32_t address() const { return job_.ptr; }
  // Past one delivered element; false if no job is running.
  bool Advance();

 private:
  struct Job {
    bool active = false;
    bool write = false;
    int dims = 1;
    uint32_t ptr = 0;
    uint32_t repeat = 0;
    uint32_t bound[4] = {};
    uint32_t stride[4] = {};
    uint32_t count[4] = {};
    uint32_t rep = 0;
  };
  void Start(uint32_t ptr, bool write, int dims);

  // The configuration words as last written (applied at the next start).
  uint32_t repeat_ = 0;
  uint32_t bound_[4] = {};
  uint32_t stride_[4] = {};
  Job job_;
  Job pending_;
};

}  // namespace joule::iss

#endif  // JOULE_DEVICE_RISCV_SIM_ISS_SSR_H_
