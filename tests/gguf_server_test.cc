// joule_server on a GGUF file as a user starts it: --model=file.gguf and no
// --tokenizer. The file is stories260K written as F32 GGUF, so greedy text
// on every CPU device must be the llama2.c reference, token for token.
#include <memory>
#include <regex>
#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "model/checkpoint.h"
#include "model/gguf_export.h"
#include "model/tokenizer.h"
#include "proto/joule.grpc.pb.h"
#include "tests/reference_text.h"
#include "tests/subprocess.h"
#include "tests/test_paths.h"

namespace joule {
namespace {

using ::testing::HasSubstr;
using testing::Runfile;

class GgufServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new std::string(testing::TempDir());
    const std::string gguf = *tmp_ + "/stories260K-f32.gguf";
    auto ckpt =
        model::Checkpoint::Open(testing::SharedModel("stories260K.bin"));
    ASSERT_TRUE(ckpt.ok()) << ckpt.status();
    auto tok = model::Tokenizer::Load(testing::SharedModel("tok512.bin"),
                                      (*ckpt)->config().vocab_size);
    ASSERT_TRUE(tok.ok()) << tok.status();
    ASSERT_TRUE(model::ExportGguf(**ckpt, **tok, model::gguf::TensorType::kF32,
                                  "stories260K", gguf)
                    .ok());
    server_ = new testing::Subprocess(
        {Runfile("server/joule_server"), "--host=127.0.0.1", "--port=0",
         "--metrics_port=-1", "--http_port=-1", "--devices=cpu,cpu-ref",
         "--model=" + gguf},
        *tmp_ + "/server.out", *tmp_ + "/server.err");
    ASSERT_TRUE(server_->started());
    const std::regex listening("listening on 127\\.0\\.0\\.1:(\\d+)");
    for (int i = 0; i < 1000 && port_ == 0; ++i) {
      std::smatch m;
      const std::string err = server_->Stderr();
      if (std::regex_search(err, m, listening)) port_ = std::stoi(m[1]);
      absl::SleepFor(absl::Milliseconds(10));
    }
    ASSERT_NE(port_, 0) << server_->Stderr();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }

  static std::string* tmp_;
  static testing::Subprocess* server_;
  static int port_;
};

std::string* GgufServerTest::tmp_ = nullptr;
testing::Subprocess* GgufServerTest::server_ = nullptr;
int GgufServerTest::port_ = 0;

TEST_F(GgufServerTest, GreedyTextIsTheReferenceOnEveryCpuDevice) {
  for (const char* device : {"cpu", "cpu-ref"}) {
    testing::RunResult r =
        testing::Run({Runfile("clients/joule_cli"), "--target=" + target(),
                      "--temperature=0", "--max_tokens=256",
                      std::string("--device=") + device, "--pin_device"},
                     *tmp_);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, std::string(testing::kStories260KGreedy) + "\n") << device;
  }
}

TEST_F(GgufServerTest, ModelInfoSaysGgufAndItsTokenizerIsTheFiles) {
  auto stub = v1::Joule::NewStub(
      grpc::CreateChannel(target(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  v1::ModelInfo info;
  ASSERT_TRUE(stub->GetModelInfo(&ctx, {}, &info).ok());
  EXPECT_EQ(info.file_format(), "gguf");
  EXPECT_EQ(info.checkpoint_version(), 3);
  EXPECT_EQ(info.weight_format(), "fp32");
  EXPECT_EQ(info.vocab_size(), 512);
  EXPECT_EQ(info.bos_token_id(), 1);
  EXPECT_EQ(info.eos_token_id(), 2);
  EXPECT_THAT(server_->Stderr(), HasSubstr("GGUF version 3"));
}

}  // namespace
}  // namespace joule
