#include "server/transport_security.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "openssl/bio.h"
#include "openssl/pem.h"
#include "openssl/x509.h"

namespace joule::server {
namespace {

absl::StatusOr<std::string> ReadPem(absl::string_view flag,
                                    const std::string& path,
                                    absl::string_view marker) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, ": cannot read ", path, ": ", std::strerror(errno)));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string pem = ss.str();
  // gRPC would only fail at the first handshake, or at BuildAndStart with
  // no reason given; a file of the wrong kind is caught here by name.
  if (!absl::StrContains(pem, "-----BEGIN ") ||
      !absl::StrContains(pem, marker)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": ", path, " holds no PEM ", marker));
  }
  return pem;
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Bio = std::unique_ptr<BIO, BioFree>;

Bio MemBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::string TimeString(const ASN1_TIME* t) {
  Bio out(BIO_new(BIO_s_mem()));
  ASN1_TIME_print(out.get(), t);
  char* data = nullptr;
  const long n = BIO_get_mem_data(out.get(), &data);
  return std::string(data, n);
}

// Parses what gRPC will use: gRPC itself only fails at BuildAndStart, after
// the model has loaded, without saying which file is wrong.
absl::Status CheckKeyPair(const TlsConfig& tls) {
  std::unique_ptr<X509, X509Free> cert(
      PEM_read_bio_X509(MemBio(tls.cert_chain_pem).get(), nullptr, nullptr,
                        nullptr));
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        "--tls_cert_file: the first certificate does not parse");
  }
  std::unique_ptr<EVP_PKEY, PkeyFree> key(PEM_read_bio_PrivateKey(
      MemBio(tls.private_key_pem).get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        "--tls_key_file: the private key does not parse (it must not be "
        "encrypted)");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return absl::InvalidArgumentError(
        "--tls_key_file is not the key of the certificate in "
        "--tls_cert_file");
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert.get())) < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls_cert_file: the certificate expired on ",
                     TimeString(X509_get0_notAfter(cert.get()))));
  }
  if (!tls.client_ca_pem.empty()) {
    std::unique_ptr<X509, X509Free> ca(PEM_read_bio_X509(
        MemBio(tls.client_ca_pem).get(), nullptr, nullptr, nullptr));
    if (ca == nullptr) {
      return absl::InvalidArgumentError(
          "--tls_client_ca_file: the first certificate does not parse");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::optional<TlsConfig>> LoadTls(const TlsFiles& files) {
  const bool cert = !files.cert_file.empty();
  const bool key = !files.key_file.empty();
  if (cert != key) {
    return absl::InvalidArgumentError(
        cert ? "--tls_cert_file is set but --tls_key_file is not: TLS needs "
               "both the certificate and its private key"
             : "--tls_key_file is set but --tls_cert_file is not: TLS needs "
               "both the certificate and its private key");
  }
  if (!cert) {
    if (!files.client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "--tls_client_ca_file needs --tls_cert_file and --tls_key_file: "
          "mutual TLS is TLS with client certificates");
    }
    return std::nullopt;
  }
  TlsConfig tls;
  auto chain = ReadPem("tls_cert_file", files.cert_file, "CERTIFICATE");
  if (!chain.ok()) return chain.status();
  tls.cert_chain_pem = *std::move(chain);
  auto pkey = ReadPem("tls_key_file", files.key_file, "PRIVATE KEY");
  if (!pkey.ok()) return pkey.status();
  tls.private_key_pem = *std::move(pkey);
  if (!files.client_ca_file.empty()) {
    auto ca =
        ReadPem("tls_client_ca_file", files.client_ca_file, "CERTIFICATE");
    if (!ca.ok()) return ca.status();
    tls.client_ca_pem = *std::move(ca);
  }
  if (absl::Status s = CheckKeyPair(tls); !s.ok()) return s;
  return tls;
}

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(
    const std::optional<TlsConfig>& tls) {
  if (!tls.has_value()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      tls->client_ca_pem.empty()
          ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
          : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = tls->client_ca_pem;
  options.pem_key_cert_pairs.push_back(
      {tls->private_key_pem, tls->cert_chain_pem});
  return grpc::SslServerCredentials(options);
}

grpc::Status AuthorizeCall(const ApiKeys& keys,
                           const grpc::ServerContext& context) {
  if (!keys.enabled()) return grpc::Status::OK;
  std::optional<absl::string_view> authorization;
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    authorization = absl::string_view(it->second.data(), it->second.size());
  }
  absl::Status s = keys.Check(authorization);
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      std::string(s.message()));
}

}  // namespace joule::server
