// LeakSanitizer suppressions for the clients, read by LSan at exit in
// --config=asan builds (and never called otherwise). Built into the binaries,
// since a suppressions file in LSAN_OPTIONS would need an absolute path.
//
// c-ares (Debian 12: libc-ares2 1.18.1) leaks the strdup'd name each time it
// resolves a host from /etc/hosts (10 bytes for "localhost"); gRPC's DNS
// resolver calls it for targets such as localhost:50051. It is Debian's
// library, not ours to fix: https://github.com/c-ares/c-ares/issues/439
extern "C" const char* __lsan_default_suppressions() {
  return "leak:libcares.so\n";
}
