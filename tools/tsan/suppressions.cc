// ThreadSanitizer suppressions, built into every --config=tsan binary (the
// test binaries and the servers they start) so no file path is needed.
//
// Debian's gRPC, OpenSSL and Abseil are not instrumented. TSan sees only
// the libc calls they make and the accesses of their inline header code,
// and none of the locks and atomics that order those accesses. A call's
// metadata and messages are built by the calling thread and read by a gRPC
// thread after a hand-off TSan cannot see, so each such pair is reported
// as a race. What is suppressed is only gRPC's and OpenSSL's own handling
// of a call; accesses in this program's code are still checked, and
// absl::Mutex is made visible by absl_annotations.cc.

extern "C" const char* __tsan_default_suppressions() {
  return
      // libc calls (epoll on poller fds, memcpy, malloc and free of call
      // state) made by the uninstrumented libraries themselves.
      "called_from_lib:libgrpc.so\n"
      "called_from_lib:libgpr.so\n"
      "called_from_lib:libgrpc++.so\n"
      "called_from_lib:libssl.so\n"
      "called_from_lib:libcrypto.so\n"
      // The libraries gRPC calls as it handles a call (Abseil's status,
      // strings, cords and time; upb; re2; c-ares; zlib): their memcpy,
      // malloc and free are not checked anywhere in the program. (Each
      // entry must name exactly one library.)
      "called_from_lib:libabsl_status.so\n"
      "called_from_lib:libabsl_statusor.so\n"
      "called_from_lib:libabsl_strings.so\n"
      "called_from_lib:libabsl_str_format_internal.so\n"
      "called_from_lib:libabsl_cord.so\n"
      "called_from_lib:libabsl_cord_internal.so\n"
      "called_from_lib:libabsl_time.so\n"
      // cctz's time-zone cache: a mutex created once under a static
      // guard whose fast path (an inline acquire load in the library) TSan
      // cannot see, so the first lock from another thread looked like a
      // race with its allocation (soak_test, a gRPC thread loading "UTC").
      "called_from_lib:libabsl_time_zone.so\n"
      "called_from_lib:libabsl_random_internal_pool_urbg.so\n"
      "called_from_lib:libabsl_raw_hash_set.so\n"
      "called_from_lib:libupb.so\n"
      "called_from_lib:libre2.so\n"
      "called_from_lib:libcares.so\n"
      "called_from_lib:libz.so\n"
      "called_from_lib:libaddress_sorting.so\n"
      // Debian's cpp-httplib (the HTTP port's accept loop and worker
      // pool): its workers' memcpy/memcmp on a block one of them allocated
      // (cluster_test, health polls from several clients at once). Its
      // synchronisation is in the uninstrumented library, as with cctz
      // below; Joule's own handlers (server/http_*) are still checked.
      "called_from_lib:libcpp-httplib.so\n"
      // gRPC's inline C++ API, writing call state that libgrpc then reads.
      "race:grpc::internal::CallOpSet\n"
      "race:grpc::internal::Call::PerformOps\n"
      "race:grpc::internal::BlockingUnaryCall\n"
      "race:grpc::internal::UnaryDeserializeHelper\n"
      "race:grpc::Status::operator=\n"
      // A request's payload slices: libgrpc allocates them and hands them
      // over between its threads (and reuses their memory for the next
      // call) out of TSan's sight; the inline Slice destructor frees them
      // after Joule's Deserialize (proto/request_traits.h) copied them out
      // (soak_test).
      "race:grpc::Slice::~Slice\n"
      "race:grpc::internal::InterceptorBatchMethodsImpl\n"
      // A real race, in Debian's civetweb (prometheus-cpp's HTTP server):
      // its workers format the Date header with gmtime's shared buffer. At
      // worst a /metrics response carries a wrong Date; nothing here calls
      // gmtime.
      "race:gmtime\n"
      // gRPC's own threads (timer, executor) that finished but that
      // libgpr had not joined when a client exited right after a failed
      // connect (joule_cli against a stopped server in server_binary_test:
      // the report turned its exit code 1 into 66). Threads this program
      // starts are still checked for leaks.
      "thread:grpc_core::Thread::Thread\n"
      // Abseil's flags initialise each flag once under their own call_once.
      "race:absl::debian3::flags_internal::FlagImpl\n";
}
