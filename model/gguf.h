#ifndef JOULE_MODEL_GGUF_H_
#define JOULE_MODEL_GGUF_H_

// GGUF (versions 2 and 3), the file format of llama.cpp and ggml: a header,
// typed key-value metadata, tensor descriptions, then aligned tensor data.
// Layout from ggml's docs/gguf.md; every count, length, offset and size is
// checked against the file with overflow-safe arithmetic before use, so a
// hostile file gets an error naming what is wrong, never a read past its
// end or an allocation larger than the file.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/mapped_file.h"

namespace joule::model::gguf {

inline constexpr uint32_t kMagic = 0x46554747;  // "GGUF", little-endian
inline constexpr uint32_t kDefaultAlignment = 32;

// gguf_type in ggml's gguf.h.
enum class ValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// ggml_type numbers of the tensor types Joule reads (ggml.h); others are
// described by TensorTypeName and refused by the model loader.
enum class TensorType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ8_0 = 8,
  kBF16 = 30,
};

// "F32", "Q4_K", ... or "type 77" for one ggml does not define.
std::string TensorTypeName(uint32_t type);
// Values per block and bytes per block of a ggml type; false for a type
// whose block layout is not known here.
bool BlockLayout(uint32_t type, int* values, int* bytes);

// One metadata value. Views point into the file's bytes.
struct Value {
  ValueType type = ValueType::kUint8;
  // Scalars: integers and bools in `i` (or `u` for uint64 above INT64_MAX,
  // with `i` unused), floats in `f`.
  int64_t i = 0;
  uint64_t u = 0;
  bool above_int64 = false;
  double f = 0;
  absl::string_view str;
  // Arrays: the element type and count; string elements in `strings`,
  // numbers decoded on access from `raw`.
  ValueType element_type = ValueType::kUint8;
  uint64_t count = 0;
  const unsigned char* raw = nullptr;
  std::vector<absl::string_view> strings;
};

struct TensorInfo {
  std::string name;
  // ggml order: dims[0] varies fastest (a matrix's columns).
  std::vector<int64_t> dims;
  uint32_t type = 0;
  uint64_t offset = 0;  // From the start of the data section.
  int64_t elements = 0;
  uint64_t bytes = 0;
  const unsigned char* data = nullptr;
};

class File {
 public:
  // Maps and parses `path`.
  static absl::StatusOr<std::unique_ptr<File>> Open(const std::string& path);
  // Parses bytes the caller keeps alive for the File's lifetime.
  static absl::StatusOr<std::unique_ptr<File>> Parse(const unsigned char* data,
                                                     size_t size);

  // True when `data` starts with GGUF's magic.
  static bool HasMagic(const unsigned char* data, size_t size);

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  const std::string& path() const;
  size_t size() const { return size_; }

  const Value* Find(absl::string_view key) const;
  // Typed look-ups: NOT_FOUND when absent, INVALID_ARGUMENT naming the key
  // when present with another type or out of range.
  absl::StatusOr<int64_t> GetInt(absl::string_view key) const;
  absl::StatusOr<double> GetFloat(absl::string_view key) const;
  absl::StatusOr<bool> GetBool(absl::string_view key) const;
  absl::StatusOr<absl::string_view> GetString(absl::string_view key) const;
  absl::StatusOr<std::vector<absl::string_view>> GetStrings(
      absl::string_view key) const;
  absl::StatusOr<std::vector<float>> GetFloats(absl::string_view key) const;
  absl::StatusOr<std::vector<int64_t>> GetInts(absl::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* FindTensor(absl::string_view name) const;

 private:
  File() = default;
  absl::Status ParseAll();
  // Points each tensor of a known layout at its bytes, checking it lies in
  // the data section, is aligned and overlaps no other.
  absl::Status PlaceTensors(uint64_t data_start, uint64_t data_size);

  std::unique_ptr<MappedFile> file_;
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint32_t alignment_ = kDefaultAlignment;
  absl::flat_hash_map<std::string, Value> metadata_;
  std::vector<TensorInfo> tensors_;
  absl::flat_hash_map<std::string, size_t> tensor_index_;
};

}  // namespace joule::model::gguf

#endif  // JOULE_MODEL_GGUF_H_
