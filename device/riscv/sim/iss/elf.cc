#include "device/riscv/sim/iss/elf.h"

#include <cstring>

#include "absl/strings/str_format.h"

namespace joule::iss {
namespace {

constexpr int kMaxProgramHeaders = 64;
constexpr uint64_t kMaxLoadedBytes = uint64_t{256} << 20;
constexpr uint32_t kMaxSymbols = 1 << 16;
constexpr uint16_t kMachineRiscv = 243;

// Reads a little-endian T at `off`, if the file holds it.
template <typename T>
bool Read(absl::Span<const uint8_t> f, uint64_t off, T* v) {
  if (off > f.size() || sizeof(T) > f.size() - off) return false;
  std::memcpy(v, f.data() + off, sizeof(T));
  return true;
}

bool InFile(absl::Span<const uint8_t> f, uint64_t off, uint64_t n) {
  return off <= f.size() && n <= f.size() - off;
}

absl::Status Bad(const std::string& what) {
  return absl::InvalidArgumentError("ELF: " + what);
}

absl::Status ParseSegments(absl::Span<const uint8_t> f, uint32_t phoff,
                           uint16_t phnum, ElfImage* img) {
  if (phnum == 0 || phnum > kMaxProgramHeaders) {
    return Bad(absl::StrFormat("%d program headers (1-%d)", phnum,
                               kMaxProgramHeaders));
  }
  if (!InFile(f, phoff, uint64_t{phnum} * 32)) {
    return Bad("program headers run past the end of the file");
  }
  uint64_t loaded = 0;
  for (int i = 0; i < phnum; ++i) {
    const uint64_t h = phoff + static_cast<uint64_t>(i) * 32;
    uint32_t type = 0, offset = 0, vaddr = 0, filesz = 0, memsz = 0, flags = 0;
    Read(f, h, &type);
    Read(f, h + 4, &offset);
    Read(f, h + 8, &vaddr);
    Read(f, h + 16, &filesz);
    Read(f, h + 20, &memsz);
    Read(f, h + 24, &flags);
    if (type != 1 || memsz == 0) continue;  // PT_LOAD only.
    if (filesz > memsz) {
      return Bad(absl::StrFormat("segment %d: file size %u > memory size %u", i,
                                 filesz, memsz));
    }
    if (!InFile(f, offset, filesz)) {
      return Bad(
          absl::StrFormat("segment %d runs past the end of the file", i));
    }
    if (uint64_t{vaddr} + memsz > (uint64_t{1} << 32)) {
      return Bad(absl::StrFormat("segment %d wraps past 4 GiB", i));
    }
    loaded += memsz;
    if (loaded > kMaxLoadedBytes) {
      return Bad(absl::StrFormat("segments load more than %d MiB",
                                 kMaxLoadedBytes >> 20));
    }
    ElfImage::Segment s;
    s.vaddr = vaddr;
    s.memsz = memsz;
    s.bytes.assign(f.begin() + offset, f.begin() + offset + filesz);
    s.executable = (flags & 1) != 0;  // PF_X
    img->segments.push_back(std::move(s));
  }
  if (img->segments.empty()) return Bad("no loadable segment");
  return absl::OkStatus();
}

// The symbol table (SHT_SYMTAB) and its string table, if any; a stripped
// executable has none, which is not an error.
absl::Status ParseSymbols(absl::Span<const uint8_t> f, uint32_t shoff,
                          uint16_t shnum, uint16_t shentsize, ElfImage* img) {
  if (shoff == 0 || shnum == 0) return absl::OkStatus();
  if (shentsize != 40) return Bad("section header size is not 40");
  if (!InFile(f, shoff, uint64_t{shnum} * 40)) {
    return Bad("section headers run past the end of the file");
  }
  for (int i = 0; i < shnum; ++i) {
    const uint64_t h = shoff + static_cast<uint64_t>(i) * 40;
    uint32_t type = 0, offset = 0, size = 0, link = 0, entsize = 0;
    Read(f, h + 4, &type);
    Read(f, h + 16, &offset);
    Read(f, h + 20, &size);
    Read(f, h + 24, &link);
    Read(f, h + 36, &entsize);
    if (type != 2) continue;  // SHT_SYMTAB
    if (entsize != 16 || !InFile(f, offset, size) || link >= shnum) {
      return Bad("malformed symbol table");
    }
    uint32_t str_off = 0, str_size = 0;
    Read(f, shoff + uint64_t{link} * 40 + 16, &str_off);
    Read(f, shoff + uint64_t{link} * 40 + 20, &str_size);
    if (!InFile(f, str_off, str_size)) return Bad("malformed string table");
    if (size / 16 > kMaxSymbols) return Bad("more than 65536 symbols");
    for (uint32_t s = 1; s < size / 16; ++s) {
      const uint64_t e = uint64_t{offset} + uint64_t{s} * 16;
      uint32_t name = 0, value = 0;
      uint16_t shndx = 0;
      Read(f, e, &name);
      Read(f, e + 4, &value);
      Read(f, e + 14, &shndx);
      if (shndx == 0 || name >= str_size) continue;  // Undefined or bad.
      const char* p = reinterpret_cast<const char*>(f.data()) + str_off + name;
      const size_t n = strnlen(p, str_size - name);
      if (n == 0 || n == str_size - name) continue;  // Empty or unterminated.
      img->symbols.emplace(std::string(p, n), value);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ElfImage> ParseElf(absl::Span<const uint8_t> f) {
  if (f.size() < 52 || std::memcmp(f.data(),
                                   "\x7f"
                                   "ELF",
                                   4) != 0) {
    return Bad("not an ELF file");
  }
  if (f[4] != 1 || f[5] != 1) return Bad("not 32-bit little-endian");
  uint16_t type = 0, machine = 0, phentsize = 0, phnum = 0, shentsize = 0,
           shnum = 0;
  uint32_t entry = 0, phoff = 0, shoff = 0;
  Read(f, 16, &type);
  Read(f, 18, &machine);
  Read(f, 24, &entry);
  Read(f, 28, &phoff);
  Read(f, 32, &shoff);
  Read(f, 42, &phentsize);
  Read(f, 44, &phnum);
  Read(f, 46, &shentsize);
  Read(f, 48, &shnum);
  if (type != 2) return Bad("not an executable (ET_EXEC)");
  if (machine != kMachineRiscv) {
    return Bad(absl::StrFormat("machine %d is not RISC-V (243)", machine));
  }
  if (phentsize != 32) return Bad("program header size is not 32");
  ElfImage img;
  img.entry = entry;
  if (absl::Status s = ParseSegments(f, phoff, phnum, &img); !s.ok()) return s;
  if (absl::Status s = ParseSymbols(f, shoff, shnum, shentsize, &img);
      !s.ok()) {
    return s;
  }
  return img;
}

absl::Status LoadElf(const ElfImage& image, Memory* mem) {
  for (size_t i = 0; i < image.segments.size(); ++i) {
    const ElfImage::Segment& s = image.segments[i];
    if (absl::Status st =
            mem->Map(s.vaddr, s.memsz, absl::StrFormat("ELF segment %d", i));
        !st.ok()) {
      return st;
    }
    if (!s.bytes.empty()) {
      std::memcpy(mem->At(s.vaddr, s.memsz), s.bytes.data(), s.bytes.size());
    }
  }
  return absl::OkStatus();
}

}  // namespace joule::iss
