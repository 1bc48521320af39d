#include "device/fpga/xclbin_file.h"

#include <xrt/xclbin.h>  // XRT's axlf structures.

#include <cstddef>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace joule::fpga {
namespace {

struct Section {
  axlf_section_kind kind;
  std::string name;
  std::string data;
};

template <typename T>
void Put(std::string* out, const T& v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

}  // namespace

std::vector<KernelArg> ForwardKernelArgs() {
  return {{"q8", true},        {"scales", true},
          {"norms", true},     {"shared_classifier", false},
          {"token", false},    {"pos", false},
          {"key_cache", true}, {"value_cache", true},
          {"out", true}};
}

std::string ShapeText(const XclbinShape& s) {
  const model::Config& c = s.config;
  return absl::StrFormat(
      "joule-shape dim=%d hidden_dim=%d n_layers=%d n_heads=%d n_kv_heads=%d "
      "vocab_size=%d seq_len=%d gs=%d",
      c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size,
      c.seq_len, s.group_size);
}

std::string BuildXclbin(const std::string& kernel_name,
                        const std::vector<KernelArg>& args,
                        const XclbinShape& shape, const std::string& platform) {
  std::vector<Section> sections;
  // Kernel metadata, with the HLS register map: control at 0x00-0x0f, then
  // 64-bit pointers 12 bytes apart and 32-bit scalars 8 apart.
  std::string xml = absl::StrCat(
      "<project name=\"joule\"><platform><device><core>\n<kernel name=\"",
      kernel_name, "\" type=\"pl\">\n");
  uint32_t offset = 0x10;
  for (size_t i = 0; i < args.size(); ++i) {
    const int size = args[i].global ? 8 : 4;
    absl::StrAppendFormat(
        &xml,
        "<arg name=\"%s\" addressQualifier=\"%d\" id=\"%d\" size=\"0x%x\" "
        "offset=\"0x%x\" hostSize=\"0x%x\"%s/>\n",
        args[i].name, args[i].global ? 1 : 0, i, size, offset, size,
        args[i].global ? "" : " type=\"int\"");
    offset += args[i].global ? 12 : 8;
  }
  xml += "</kernel>\n</core></device></platform></project>\n";
  sections.push_back({EMBEDDED_METADATA, "metadata", xml});

  // One 4 GiB DDR bank per pointer argument.
  std::string mem;
  int32_t banks = 0;
  for (const KernelArg& a : args) banks += a.global;
  Put(&mem, banks);
  mem.resize(offsetof(mem_topology, m_mem_data), '\0');
  for (int b = 0; b < banks; ++b) {
    mem_data m{};
    m.m_type = MEM_DDR4;
    m.m_used = 1;
    m.m_size = uint64_t{4} << 20;  // KB.
    m.m_base_address = static_cast<uint64_t>(b) << 32;
    std::snprintf(reinterpret_cast<char*>(m.m_tag), sizeof(m.m_tag), "bank%d",
                  b);
    Put(&mem, m);
  }
  sections.push_back({MEM_TOPOLOGY, "mem_topology", mem});

  std::string ip;
  Put(&ip, int32_t{1});
  ip.resize(offsetof(ip_layout, m_ip_data), '\0');
  ip_data cu{};
  cu.m_type = IP_KERNEL;
  cu.properties = (AP_CTRL_HS << IP_CONTROL_SHIFT) | 1;  // Interrupt enabled.
  cu.m_base_address = 0x1800000;
  std::snprintf(reinterpret_cast<char*>(cu.m_name), sizeof(cu.m_name),
                "%s:%s_1", kernel_name.c_str(), kernel_name.c_str());
  Put(&ip, cu);
  sections.push_back({IP_LAYOUT, "ip_layout", ip});

  std::string conn;
  Put(&conn, banks);
  int32_t bank = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    if (!args[i].global) continue;
    connection c{static_cast<int32_t>(i), 0, bank++};
    Put(&conn, c);
  }
  sections.push_back({CONNECTIVITY, "connectivity", conn});
  sections.push_back({USER_METADATA, "joule_shape", ShapeText(shape)});

  // Header, section headers, then each section 8-byte aligned.
  const size_t header = offsetof(axlf, m_sections) +
                        sections.size() * sizeof(axlf_section_header);
  std::string out(header, '\0');
  std::vector<axlf_section_header> headers;
  for (const Section& s : sections) {
    out.resize((out.size() + 7) & ~size_t{7}, '\0');
    axlf_section_header h{};
    h.m_sectionKind = s.kind;
    std::snprintf(h.m_sectionName, sizeof(h.m_sectionName), "%s",
                  s.name.c_str());
    h.m_sectionOffset = out.size();
    h.m_sectionSize = s.data.size();
    headers.push_back(h);
    out += s.data;
  }
  axlf top{};
  std::memcpy(top.m_magic, "xclbin2", 8);
  top.m_signature_length = -1;
  std::memset(top.reserved, 0xFF, sizeof(top.reserved));
  std::memset(top.m_keyBlock, 0xFF, sizeof(top.m_keyBlock));
  top.m_header.m_length = out.size();
  top.m_header.m_timeStamp = static_cast<uint64_t>(std::time(nullptr));
  top.m_header.m_versionMajor = 2;
  top.m_header.m_mode = XCLBIN_HW_EMU;
  std::snprintf(reinterpret_cast<char*>(top.m_header.m_platformVBNV),
                sizeof(top.m_header.m_platformVBNV), "%s", platform.c_str());
  std::mt19937_64 rng(std::hash<std::string>()(ShapeText(shape)));
  for (auto& b : top.m_header.uuid) b = static_cast<unsigned char>(rng());
  top.m_header.m_numSections = static_cast<uint32_t>(sections.size());
  std::memcpy(out.data(), &top, offsetof(axlf, m_sections));
  std::memcpy(out.data() + offsetof(axlf, m_sections), headers.data(),
              headers.size() * sizeof(axlf_section_header));
  return out;
}

absl::StatusOr<XclbinShape> ReadXclbinShape(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::NotFoundError(absl::StrCat("cannot read xclbin ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string data = ss.str();
  if (data.size() < offsetof(axlf, m_sections) ||
      std::memcmp(data.data(), "xclbin2", 8) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not an xclbin (no xclbin2 magic)"));
  }
  axlf top;
  std::memcpy(&top, data.data(), offsetof(axlf, m_sections));
  const size_t n = top.m_header.m_numSections;
  if (n > 1024 || offsetof(axlf, m_sections) + n * sizeof(axlf_section_header) >
                      data.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": truncated section table"));
  }
  for (size_t i = 0; i < n; ++i) {
    axlf_section_header h;
    std::memcpy(&h, data.data() + offsetof(axlf, m_sections) + i * sizeof(h),
                sizeof(h));
    if (h.m_sectionKind != USER_METADATA) continue;
    if (h.m_sectionOffset > data.size() ||
        h.m_sectionSize > data.size() - h.m_sectionOffset) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": section out of bounds"));
    }
    const std::string text = data.substr(h.m_sectionOffset, h.m_sectionSize);
    if (text.rfind("joule-shape ", 0) != 0) continue;
    XclbinShape shape;
    model::Config& c = shape.config;
    for (absl::string_view kv : absl::StrSplit(text.substr(12), ' ')) {
      std::pair<std::string, std::string> p = absl::StrSplit(kv, '=');
      int v = 0;
      if (!absl::SimpleAtoi(p.second, &v)) continue;
      if (p.first == "dim") c.dim = v;
      if (p.first == "hidden_dim") c.hidden_dim = v;
      if (p.first == "n_layers") c.n_layers = v;
      if (p.first == "n_heads") c.n_heads = v;
      if (p.first == "n_kv_heads") c.n_kv_heads = v;
      if (p.first == "vocab_size") c.vocab_size = v;
      if (p.first == "seq_len") c.seq_len = v;
      if (p.first == "gs") shape.group_size = v;
    }
    return shape;
  }
  return absl::NotFoundError(
      absl::StrCat(path, " has no joule-shape metadata"));
}

}  // namespace joule::fpga
