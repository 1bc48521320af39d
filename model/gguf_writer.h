#ifndef JOULE_MODEL_GGUF_WRITER_H_
#define JOULE_MODEL_GGUF_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "model/gguf.h"

namespace joule::model::gguf {

// Builds a GGUF file: metadata in the order set, then tensor descriptions,
// then the data, each tensor aligned. For the converter, tests and fuzzer
// seeds; the bytes follow ggml's docs/gguf.md.
class Writer {
 public:
  explicit Writer(uint32_t version = 3) : version_(version) {}

  void SetUint32(absl::string_view key, uint32_t v);
  void SetInt32(absl::string_view key, int32_t v);
  void SetUint64(absl::string_view key, uint64_t v);
  void SetFloat32(absl::string_view key, float v);
  void SetBool(absl::string_view key, bool v);
  void SetString(absl::string_view key, absl::string_view v);
  void SetStrings(absl::string_view key, const std::vector<std::string>& v);
  void SetFloat32s(absl::string_view key, const std::vector<float>& v);
  void SetInt32s(absl::string_view key, const std::vector<int32_t>& v);

  // `dims` in ggml order (dims[0] = the row length); `data` is the encoded
  // tensor (see ggml_quants.h).
  void AddTensor(absl::string_view name, std::vector<int64_t> dims,
                 uint32_t type, std::string data);

  std::string Serialize() const;
  absl::Status WriteFile(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> dims;
    uint32_t type;
    std::string data;
  };
  void Key(absl::string_view key, ValueType type);
  uint32_t Alignment() const;

  uint32_t version_;
  uint64_t kv_count_ = 0;
  uint32_t alignment_ = kDefaultAlignment;
  std::string kv_;  // Serialized key-value pairs.
  std::vector<Tensor> tensors_;
};

}  // namespace joule::model::gguf

#endif  // JOULE_MODEL_GGUF_WRITER_H_
