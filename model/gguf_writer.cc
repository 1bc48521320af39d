#include "model/gguf_writer.h"

#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace joule::model::gguf {
namespace {

template <typename T>
void Put(T v, std::string* out) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out->append(b, sizeof(T));
}

void PutString(absl::string_view s, std::string* out) {
  Put<uint64_t>(s.size(), out);
  out->append(s.data(), s.size());
}

}  // namespace

void Writer::Key(absl::string_view key, ValueType type) {
  ++kv_count_;
  PutString(key, &kv_);
  Put<uint32_t>(static_cast<uint32_t>(type), &kv_);
}

void Writer::SetUint32(absl::string_view key, uint32_t v) {
  Key(key, ValueType::kUint32);
  Put(v, &kv_);
  if (key == "general.alignment") alignment_ = v;
}

void Writer::SetInt32(absl::string_view key, int32_t v) {
  Key(key, ValueType::kInt32);
  Put(v, &kv_);
}

void Writer::SetUint64(absl::string_view key, uint64_t v) {
  Key(key, ValueType::kUint64);
  Put(v, &kv_);
}

void Writer::SetFloat32(absl::string_view key, float v) {
  Key(key, ValueType::kFloat32);
  Put(v, &kv_);
}

void Writer::SetBool(absl::string_view key, bool v) {
  Key(key, ValueType::kBool);
  Put<uint8_t>(v ? 1 : 0, &kv_);
}

void Writer::SetString(absl::string_view key, absl::string_view v) {
  Key(key, ValueType::kString);
  PutString(v, &kv_);
}

void Writer::SetStrings(absl::string_view key,
                        const std::vector<std::string>& v) {
  Key(key, ValueType::kArray);
  Put<uint32_t>(static_cast<uint32_t>(ValueType::kString), &kv_);
  Put<uint64_t>(v.size(), &kv_);
  for (const std::string& s : v) PutString(s, &kv_);
}

void Writer::SetFloat32s(absl::string_view key, const std::vector<float>& v) {
  Key(key, ValueType::kArray);
  Put<uint32_t>(static_cast<uint32_t>(ValueType::kFloat32), &kv_);
  Put<uint64_t>(v.size(), &kv_);
  for (float f : v) Put(f, &kv_);
}

void Writer::SetInt32s(absl::string_view key, const std::vector<int32_t>& v) {
  Key(key, ValueType::kArray);
  Put<uint32_t>(static_cast<uint32_t>(ValueType::kInt32), &kv_);
  Put<uint64_t>(v.size(), &kv_);
  for (int32_t i : v) Put(i, &kv_);
}

void Writer::AddTensor(absl::string_view name, std::vector<int64_t> dims,
                       uint32_t type, std::string data) {
  tensors_.push_back(
      {std::string(name), std::move(dims), type, std::move(data)});
}

uint32_t Writer::Alignment() const {
  return alignment_ != 0 ? alignment_ : kDefaultAlignment;
}

std::string Writer::Serialize() const {
  const uint64_t align = Alignment();
  auto pad_to = [align](std::string* out) {
    out->append((align - out->size() % align) % align, '\0');
  };
  std::string out;
  Put<uint32_t>(kMagic, &out);
  Put<uint32_t>(version_, &out);
  Put<uint64_t>(tensors_.size(), &out);
  Put<uint64_t>(kv_count_, &out);
  out += kv_;
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    PutString(t.name, &out);
    Put<uint32_t>(static_cast<uint32_t>(t.dims.size()), &out);
    for (int64_t d : t.dims) Put<uint64_t>(static_cast<uint64_t>(d), &out);
    Put<uint32_t>(t.type, &out);
    Put<uint64_t>(offset, &out);
    offset += t.data.size();
    offset += (align - offset % align) % align;
  }
  pad_to(&out);
  for (const Tensor& t : tensors_) {
    out += t.data;
    pad_to(&out);
  }
  return out;
}

absl::Status Writer::WriteFile(const std::string& path) const {
  const std::string bytes = Serialize();
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.close();
  if (!f) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace joule::model::gguf
