#include "model/gguf.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace joule::model::gguf {
namespace {

// Well above any real model's counts, far below what would exhaust memory
// (a parsed entry costs ~100 bytes beside its few in the file).
constexpr uint64_t kMaxMetadata = 1 << 16;
constexpr uint64_t kMaxTensors = 1 << 20;
// GGUF keys are ASCII; ggml's tensor names at most 63 bytes. Names go into
// error messages and logs, so they must be short and printable.
constexpr size_t kMaxNameBytes = 256;

absl::Status CheckName(absl::string_view name, absl::string_view kind,
                       uint64_t index) {
  if (name.empty() || name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s %d is %d bytes long (1 to %d)", kind, index,
                        name.size(), kMaxNameBytes));
  }
  for (char c : name) {
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s %d holds a byte that is not printable ASCII", kind, index));
    }
  }
  return absl::OkStatus();
}

// Bytes of one scalar of `t`; 0 for strings and arrays.
uint64_t ScalarBytes(ValueType t) {
  switch (t) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kBool:
      return 1;
    case ValueType::kUint16:
    case ValueType::kInt16:
      return 2;
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kFloat32:
      return 4;
    case ValueType::kUint64:
    case ValueType::kInt64:
    case ValueType::kFloat64:
      return 8;
    case ValueType::kString:
    case ValueType::kArray:
      return 0;
  }
  return 0;
}

bool KnownValueType(uint32_t t) { return t <= 12; }

const char* ValueTypeName(ValueType t) {
  static constexpr const char* kNames[] = {
      "uint8", "int8",   "uint16", "int16",  "uint32", "int32",  "float32",
      "bool",  "string", "array",  "uint64", "int64",  "float64"};
  const auto i = static_cast<uint32_t>(t);
  return i < 13 ? kNames[i] : "unknown";
}

bool IsInteger(ValueType t) {
  return t != ValueType::kFloat32 && t != ValueType::kFloat64 &&
         t != ValueType::kString && t != ValueType::kArray;
}

template <typename T>
T Load(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Decodes one scalar of type `t` at `p` (its bytes already checked).
void DecodeScalar(ValueType t, const unsigned char* p, Value* v) {
  switch (t) {
    case ValueType::kUint8:
    case ValueType::kBool:
      v->i = Load<uint8_t>(p);
      break;
    case ValueType::kInt8:
      v->i = Load<int8_t>(p);
      break;
    case ValueType::kUint16:
      v->i = Load<uint16_t>(p);
      break;
    case ValueType::kInt16:
      v->i = Load<int16_t>(p);
      break;
    case ValueType::kUint32:
      v->i = Load<uint32_t>(p);
      break;
    case ValueType::kInt32:
      v->i = Load<int32_t>(p);
      break;
    case ValueType::kUint64:
      v->u = Load<uint64_t>(p);
      v->above_int64 = v->u > uint64_t{std::numeric_limits<int64_t>::max()};
      if (!v->above_int64) v->i = static_cast<int64_t>(v->u);
      break;
    case ValueType::kInt64:
      v->i = Load<int64_t>(p);
      break;
    case ValueType::kFloat32:
      v->f = Load<float>(p);
      break;
    case ValueType::kFloat64:
      v->f = Load<double>(p);
      break;
    case ValueType::kString:
    case ValueType::kArray:
      break;
  }
}

// Reads the file front to back. Every Take checks the remaining bytes
// first, so no count from the file is multiplied or added unchecked.
class Reader {
 public:
  Reader(const unsigned char* data, size_t size) : data_(data), size_(size) {}

  size_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  absl::StatusOr<const unsigned char*> Take(uint64_t bytes,
                                            absl::string_view what) {
    if (bytes > remaining()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "file ends inside %s (needs %d bytes at offset %d, %d left)", what,
          bytes, pos_, remaining()));
    }
    const unsigned char* p = data_ + pos_;
    pos_ += bytes;
    return p;
  }
  template <typename T>
  absl::StatusOr<T> Read(absl::string_view what) {
    auto p = Take(sizeof(T), what);
    if (!p.ok()) return p.status();
    return Load<T>(*p);
  }
  absl::StatusOr<absl::string_view> String(absl::string_view what) {
    auto len = Read<uint64_t>(what);
    if (!len.ok()) return len.status();
    auto p = Take(*len, what);
    if (!p.ok()) return p.status();
    return absl::string_view(reinterpret_cast<const char*>(*p), *len);
  }

 private:
  const unsigned char* data_;
  size_t size_;
  size_t pos_ = 0;
};

absl::Status ReadValue(Reader& r, ValueType type, absl::string_view key,
                       Value* v) {
  v->type = type;
  const std::string what = absl::StrCat("the value of ", key);
  if (type == ValueType::kString) {
    auto s = r.String(what);
    if (!s.ok()) return s.status();
    v->str = *s;
    return absl::OkStatus();
  }
  if (type != ValueType::kArray) {
    auto p = r.Take(ScalarBytes(type), what);
    if (!p.ok()) return p.status();
    DecodeScalar(type, *p, v);
    if (type == ValueType::kBool && v->i > 1) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s is a bool of value %d (0 or 1)", key, v->i));
    }
    return absl::OkStatus();
  }
  auto elem = r.Read<uint32_t>(what);
  if (!elem.ok()) return elem.status();
  if (!KnownValueType(*elem)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s is an array of unknown value type %d", key, *elem));
  }
  v->element_type = static_cast<ValueType>(*elem);
  if (v->element_type == ValueType::kArray) {
    return absl::InvalidArgumentError(
        absl::StrCat(key,
                     " is an array of arrays, which GGUF models do "
                     "not use and Joule does not read"));
  }
  auto count = r.Read<uint64_t>(what);
  if (!count.ok()) return count.status();
  v->count = *count;
  if (v->element_type != ValueType::kString) {
    const uint64_t each = ScalarBytes(v->element_type);
    if (v->count > r.remaining() / each) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s claims %d elements, more than the file's %d remaining bytes "
          "hold",
          key, v->count, r.remaining()));
    }
    auto p = r.Take(v->count * each, what);
    if (!p.ok()) return p.status();
    v->raw = *p;
    if (v->element_type == ValueType::kBool) {
      for (uint64_t i = 0; i < v->count; ++i) {
        if (v->raw[i] > 1) {
          return absl::InvalidArgumentError(
              absl::StrFormat("%s element %d is a bool of value %d (0 or 1)",
                              key, i, v->raw[i]));
        }
      }
    }
    return absl::OkStatus();
  }
  // Every string takes at least its 8-byte length.
  if (v->count > r.remaining() / 8) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s claims %d strings, more than the file's %d remaining bytes hold",
        key, v->count, r.remaining()));
  }
  v->strings.reserve(v->count);
  for (uint64_t i = 0; i < v->count; ++i) {
    auto s = r.String(what);
    if (!s.ok()) return s.status();
    v->strings.push_back(*s);
  }
  return absl::OkStatus();
}

absl::Status ReadTensorInfo(Reader& r, uint64_t index, TensorInfo* t) {
  auto name = r.String("a tensor name");
  if (!name.ok()) return name.status();
  if (absl::Status s = CheckName(*name, "tensor name", index); !s.ok()) {
    return s;
  }
  t->name = std::string(*name);
  const std::string what = absl::StrCat("tensor ", t->name);
  auto n_dims = r.Read<uint32_t>(what);
  if (!n_dims.ok()) return n_dims.status();
  if (*n_dims < 1 || *n_dims > 4) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s has %d dimensions (GGUF allows 1 to 4)", what, *n_dims));
  }
  t->elements = 1;
  for (uint32_t d = 0; d < *n_dims; ++d) {
    auto dim = r.Read<uint64_t>(what);
    if (!dim.ok()) return dim.status();
    if (*dim < 1 ||
        *dim > uint64_t{std::numeric_limits<int64_t>::max()} / t->elements) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s has dimension %d of size %d: every size must be at least 1 "
          "and their product fit in 63 bits",
          what, d, *dim));
    }
    t->dims.push_back(static_cast<int64_t>(*dim));
    t->elements *= static_cast<int64_t>(*dim);
  }
  auto type = r.Read<uint32_t>(what);
  if (!type.ok()) return type.status();
  t->type = *type;
  auto offset = r.Read<uint64_t>(what);
  if (!offset.ok()) return offset.status();
  t->offset = *offset;
  int values = 0, bytes = 0;
  if (BlockLayout(t->type, &values, &bytes)) {
    if (t->dims[0] % values != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: its rows of %d values are not whole %s blocks of %d", what,
          t->dims[0], TensorTypeName(t->type), values));
    }
    const uint64_t blocks = static_cast<uint64_t>(t->elements / values);
    if (blocks > std::numeric_limits<uint64_t>::max() / bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " is too large to address"));
    }
    t->bytes = blocks * bytes;
  }
  return absl::OkStatus();
}

}  // namespace

std::string TensorTypeName(uint32_t type) {
  static constexpr const char* kNames[] = {
      "F32",   "F16",   "Q4_0",    "Q4_1",   "Q4_2",    "Q4_3",  "Q5_0",
      "Q5_1",  "Q8_0",  "Q8_1",    "Q2_K",   "Q3_K",    "Q4_K",  "Q5_K",
      "Q6_K",  "Q8_K",  "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL",
      "IQ3_S", "IQ2_S", "IQ4_XS",  "I8",     "I16",     "I32",   "I64",
      "F64",   "IQ1_M", "BF16"};
  if (type < sizeof(kNames) / sizeof(kNames[0])) return kNames[type];
  return absl::StrCat("type ", type);
}

bool BlockLayout(uint32_t type, int* values, int* bytes) {
  // Block sizes from ggml's ggml-common.h (QK_K = 256 for the K-quants).
  struct Layout {
    uint32_t type;
    int values;
    int bytes;
  };
  static constexpr Layout kLayouts[] = {
      {0, 1, 4},      {1, 1, 2},      {2, 32, 18},    {3, 32, 20},
      {6, 32, 22},    {7, 32, 24},    {8, 32, 34},    {9, 32, 36},
      {10, 256, 84},  {11, 256, 110}, {12, 256, 144}, {13, 256, 176},
      {14, 256, 210}, {15, 256, 292}, {24, 1, 1},     {25, 1, 2},
      {26, 1, 4},     {27, 1, 8},     {28, 1, 8},     {30, 1, 2},
  };
  for (const Layout& l : kLayouts) {
    if (l.type == type) {
      *values = l.values;
      *bytes = l.bytes;
      return true;
    }
  }
  return false;
}

bool File::HasMagic(const unsigned char* data, size_t size) {
  return size >= 4 && Load<uint32_t>(data) == kMagic;
}

absl::StatusOr<std::unique_ptr<File>> File::Open(const std::string& path) {
  auto mapped = MappedFile::Open(path);
  if (!mapped.ok()) return mapped.status();
  std::unique_ptr<File> f(new File());
  f->data_ = (*mapped)->data();
  f->size_ = (*mapped)->size();
  f->file_ = *std::move(mapped);
  if (absl::Status s = f->ParseAll(); !s.ok()) {
    return absl::Status(s.code(),
                        absl::StrCat("GGUF ", path, ": ", s.message()));
  }
  return f;
}

absl::StatusOr<std::unique_ptr<File>> File::Parse(const unsigned char* data,
                                                  size_t size) {
  std::unique_ptr<File> f(new File());
  f->data_ = data;
  f->size_ = size;
  if (absl::Status s = f->ParseAll(); !s.ok()) return s;
  return f;
}

const std::string& File::path() const {
  static const std::string* const kNone = new std::string("(in memory)");
  return file_ != nullptr ? file_->path() : *kNone;
}

absl::Status File::ParseAll() {
  Reader r(data_, size_);
  auto magic = r.Read<uint32_t>("the magic");
  if (!magic.ok()) return magic.status();
  if (*magic != kMagic) {
    return absl::InvalidArgumentError("not a GGUF file (no GGUF magic)");
  }
  auto version = r.Read<uint32_t>("the version");
  if (!version.ok()) return version.status();
  version_ = *version;
  if (version_ != 2 && version_ != 3) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "GGUF version %d is not supported (2 or 3; convert a version 1 "
        "file again with a current llama.cpp)",
        version_));
  }
  auto n_tensors = r.Read<uint64_t>("the tensor count");
  if (!n_tensors.ok()) return n_tensors.status();
  auto n_kv = r.Read<uint64_t>("the metadata count");
  if (!n_kv.ok()) return n_kv.status();
  // A key-value pair takes at least 13 bytes (key length, type, a byte),
  // a tensor description at least 32: counts beyond what the file can
  // hold are refused before anything is reserved. Each parsed entry costs
  // far more memory than its bytes, so the counts are also capped well
  // above any real model's (llama 2 70B: ~30 entries, 723 tensors).
  if (*n_kv > r.remaining() / 13 || *n_tensors > r.remaining() / 32) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the header claims %d metadata entries and %d tensors, more than "
        "the file's %d bytes can hold",
        *n_kv, *n_tensors, size_));
  }
  if (*n_kv > kMaxMetadata || *n_tensors > kMaxTensors) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the header claims %d metadata entries and %d tensors; Joule reads "
        "at most %d and %d",
        *n_kv, *n_tensors, kMaxMetadata, kMaxTensors));
  }
  for (uint64_t i = 0; i < *n_kv; ++i) {
    auto key = r.String("a metadata key");
    if (!key.ok()) return key.status();
    if (absl::Status s = CheckName(*key, "metadata key", i); !s.ok()) return s;
    auto type = r.Read<uint32_t>(absl::StrCat("the type of ", *key));
    if (!type.ok()) return type.status();
    if (!KnownValueType(*type)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "metadata %s has unknown value type %d", *key, *type));
    }
    Value v;
    if (absl::Status s = ReadValue(r, static_cast<ValueType>(*type), *key, &v);
        !s.ok()) {
      return s;
    }
    if (!metadata_.emplace(std::string(*key), std::move(v)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata key ", *key, " appears twice"));
    }
  }
  if (const Value* a = Find("general.alignment"); a != nullptr) {
    if (a->type != ValueType::kUint32 || a->i == 0 || (a->i & (a->i - 1))) {
      return absl::InvalidArgumentError(
          "general.alignment must be a uint32 power of two");
    }
    alignment_ = static_cast<uint32_t>(a->i);
  }
  // The metadata used some of the bytes the first check counted on.
  if (*n_tensors > r.remaining() / 32) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the header claims %d tensors, more than the %d bytes after the "
        "metadata can hold",
        *n_tensors, r.remaining()));
  }
  tensors_.reserve(*n_tensors);
  for (uint64_t i = 0; i < *n_tensors; ++i) {
    if (absl::Status s = ReadTensorInfo(r, i, &tensors_.emplace_back());
        !s.ok())
      return s;

    if (!tensor_index_.emplace(tensors_[i].name, i).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor ", tensors_[i].name, " appears twice"));
    }
  }
  // The data section starts at the next multiple of the alignment.
  const uint64_t pad = (alignment_ - r.pos() % alignment_) % alignment_;
  const uint64_t data_start = pad <= r.remaining() ? r.pos() + pad : size_;
  const uint64_t data_size = size_ - data_start;
  return PlaceTensors(data_start, data_size);
}

absl::Status File::PlaceTensors(uint64_t data_start, uint64_t data_size) {
  std::vector<const TensorInfo*> placed;
  for (TensorInfo& t : tensors_) {
    if (t.offset % alignment_ != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "tensor %s starts at data offset %d, not a multiple of the "
          "alignment %d",
          t.name, t.offset, alignment_));
    }
    int values = 0, bytes = 0;
    if (!BlockLayout(t.type, &values, &bytes)) continue;  // Sized by nobody.
    if (t.offset > data_size || t.bytes > data_size - t.offset) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "tensor %s (%s, %d bytes at data offset %d) lies past the end of "
          "the file's %d data bytes: truncated or corrupt",
          t.name, TensorTypeName(t.type), t.bytes, t.offset, data_size));
    }
    t.data = data_ + data_start + t.offset;
    placed.push_back(&t);
  }
  std::sort(placed.begin(), placed.end(),
            [](const TensorInfo* a, const TensorInfo* b) {
              return a->offset < b->offset;
            });
  for (size_t i = 1; i < placed.size(); ++i) {
    const TensorInfo& prev = *placed[i - 1];
    if (placed[i]->offset - prev.offset < prev.bytes) {
      return absl::InvalidArgumentError(absl::StrCat("tensors ", prev.name,
                                                     " and ", placed[i]->name,
                                                     " overlap in the file"));
    }
  }
  return absl::OkStatus();
}

const Value* File::Find(absl::string_view key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

const TensorInfo* File::FindTensor(absl::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

absl::Status WrongType(absl::string_view key, const Value& v,
                       absl::string_view wanted) {
  return absl::InvalidArgumentError(
      absl::StrCat("metadata ", key, " is ", ValueTypeName(v.type),
                   v.type == ValueType::kArray
                       ? absl::StrCat(" of ", ValueTypeName(v.element_type))
                       : "",
                   ", expected ", wanted));
}

absl::Status Missing(absl::string_view key) {
  return absl::NotFoundError(absl::StrCat("metadata ", key, " is missing"));
}

}  // namespace

absl::StatusOr<int64_t> File::GetInt(absl::string_view key) const {
  const Value* v = Find(key);
  if (v == nullptr) return Missing(key);
  if (!IsInteger(v->type) || v->type == ValueType::kBool) {
    return WrongType(key, *v, "an integer");
  }
  if (v->above_int64) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata ", key, " = ", v->u, " is out of range"));
  }
  return v->i;
}

absl::StatusOr<double> File::GetFloat(absl::string_view key) const {
  const Value* v = Find(key);
  if (v == nullptr) return Missing(key);
  if (v->type != ValueType::kFloat32 && v->type != ValueType::kFloat64) {
    return WrongType(key, *v, "a float");
  }
  return v->f;
}

absl::StatusOr<bool> File::GetBool(absl::string_view key) const {
  const Value* v = Find(key);
  if (v == nullptr) return Missing(key);
  if (v->type != ValueType::kBool) return WrongType(key, *v, "a bool");
  return v->i != 0;
}

absl::StatusOr<absl::string_view> File::GetString(absl::string_view key) const {
  const Value* v = Find(key);
  if (v == nullptr) return Missing(key);
  if (v->type != ValueType::kString) return WrongType(key, *v, "a string");
  return v->str;
}

absl::StatusOr<std::vector<absl::string_view>> File::GetStrings(
    absl::string_view key) const {
  const Value* v = Find(key);
  if (v == nullptr) return Missing(key);
  if (v->type != ValueType::kArray || v->element_type != ValueType::kString) {
    return WrongType(key, *v, "an array of strings");
  }
  return v->strings;
}

absl::StatusOr<std::vector<float>> File::GetFloats(
    absl::string_view key) const {
  const Value* v = Find(key);
  if (v == nullptr) return Missing(key);
  if (v->type != ValueType::kArray ||
      (v->element_type != ValueType::kFloat32 &&
       v->element_type != ValueType::kFloat64)) {
    return WrongType(key, *v, "an array of floats");
  }
  std::vector<float> out(v->count);
  const uint64_t each = ScalarBytes(v->element_type);
  for (uint64_t i = 0; i < v->count; ++i) {
    Value e;
    DecodeScalar(v->element_type, v->raw + i * each, &e);
    // A double beyond float's range has no float value (UB to cast).
    if (std::fabs(e.f) > std::numeric_limits<float>::max()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s element %d (%g) is beyond the float range", key, i, e.f));
    }
    out[i] = static_cast<float>(e.f);
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> File::GetInts(
    absl::string_view key) const {
  const Value* v = Find(key);
  if (v == nullptr) return Missing(key);
  if (v->type != ValueType::kArray || !IsInteger(v->element_type)) {
    return WrongType(key, *v, "an array of integers");
  }
  std::vector<int64_t> out(v->count);
  const uint64_t each = ScalarBytes(v->element_type);
  for (uint64_t i = 0; i < v->count; ++i) {
    Value e;
    DecodeScalar(v->element_type, v->raw + i * each, &e);
    if (e.above_int64) {
      return absl::InvalidArgumentError(
          absl::StrFormat("metadata %s[%d] = %d is out of range", key, i, e.u));
    }
    out[i] = e.i;
  }
  return out;
}

}  // namespace joule::model::gguf
