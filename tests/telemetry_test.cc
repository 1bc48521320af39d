// Energy meters, attribution and the Prometheus exposition.
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <numeric>
#include <random>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"
#include "telemetry/attribution.h"
#include "telemetry/meter_factory.h"
#include "telemetry/metrics.h"
#include "telemetry/power_model_meter.h"
#include "telemetry/rapl_meter.h"
#include "tests/test_paths.h"

namespace joule::telemetry {
namespace {

using ::testing::HasSubstr;

// A fake powercap tree: package zones with sub-zones, as Linux lays it out.
class FakeRapl {
 public:
  explicit FakeRapl(const std::string& name)
      : root_(testing::TempDir() + "/" + name) {
    mkdir(root_.c_str(), 0755);
  }
  void AddZone(const std::string& zone, uint64_t energy, uint64_t max_range,
               const std::string& label) {
    const std::string dir = root_ + "/" + zone;
    mkdir(dir.c_str(), 0755);
    Write(zone + "/max_energy_range_uj", std::to_string(max_range));
    Write(zone + "/name", label);
    Set(zone, energy);
  }
  void Set(const std::string& zone, uint64_t energy) {
    Write(zone + "/energy_uj", std::to_string(energy));
  }
  const std::string& root() const { return root_; }

 private:
  void Write(const std::string& rel, const std::string& v) {
    std::ofstream(root_ + "/" + rel) << v << "\n";
  }
  std::string root_;
};

TEST(RaplMeterTest, StepEnergyAcrossPackagesAndWrapAround) {
  FakeRapl rapl("rapl1");
  rapl.AddZone("intel-rapl:0", 1000000, 262143328850, "package-0");
  rapl.AddZone("intel-rapl:0:0", 500, 262143328850, "core");  // Inside pkg 0.
  rapl.AddZone("intel-rapl:1", 262143328850 - 500000, 262143328850,
               "package-1");
  auto meter = RaplMeter::Open(rapl.root());
  ASSERT_TRUE(meter.ok()) << meter.status();
  EXPECT_EQ((*meter)->source(), device::EnergySource::kMeasured);
  EXPECT_THAT((*meter)->Describe(), HasSubstr("package-0, package-1"));

  (*meter)->BeginStep();
  rapl.Set("intel-rapl:0", 1000000 + 2500000);  // +2.5 J
  rapl.Set("intel-rapl:0:0", 999999999);        // Ignored: a sub-zone.
  rapl.Set("intel-rapl:1", 1500000);            // Wrapped: +0.5 J + 1.5 J.
  auto joules = (*meter)->EndStep(absl::Milliseconds(5), std::nullopt);
  ASSERT_TRUE(joules.ok());
  EXPECT_NEAR(*joules, 2.5 + 2.0, 1e-9);
  EXPECT_NEAR((*meter)->TotalJoules(), 4.5, 1e-9);
}

TEST(RaplMeterTest, MissingOrUnreadableTreeIsNotFound) {
  EXPECT_EQ(RaplMeter::Open("/nonexistent").status().code(),
            absl::StatusCode::kNotFound);
  FakeRapl empty("rapl_empty");
  EXPECT_EQ(RaplMeter::Open(empty.root()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(PowerModelMeterTest, ActiveWattsTimesStepTimeIdleInTheTotal) {
  PowerModelMeter m({/*active=*/20.0, /*idle=*/4.0});
  EXPECT_EQ(m.source(), device::EnergySource::kModeled);
  EXPECT_THAT(m.Describe(),
              HasSubstr("modeled: 20.0 W while stepping, 4.0 W idle"));
  EXPECT_NEAR(*m.EndStep(absl::Milliseconds(50), std::nullopt), 1.0, 1e-12);
  absl::SleepFor(absl::Milliseconds(100));
  // 50 ms busy at 20 W + the rest of >= 100 ms idle at 4 W.
  const double total = m.TotalJoules();
  EXPECT_GE(total, 1.0 + 4.0 * 0.05);
  EXPECT_LT(total, 1.0 + 4.0 * 1.0);
}

TEST(DeviceReportedMeterTest, PassesTheDevicesFigureThrough) {
  DeviceReportedMeter m(device::EnergySource::kSimulated, "simulated: test");
  EXPECT_NEAR(*m.EndStep(absl::Milliseconds(1), 0.25), 0.25, 0);
  EXPECT_FALSE(m.EndStep(absl::Milliseconds(1), std::nullopt).ok());
  EXPECT_NEAR(m.TotalJoules(), 0.25, 0);
}

TEST(MeterFactoryTest, PicksRaplForCpuWhenReadableElseTheModel) {
  FakeRapl rapl("rapl2");
  rapl.AddZone("intel-rapl:0", 0, 1000000000, "package-0");
  device::Capabilities cpu;
  cpu.name = "cpu";
  cpu.kind = device::DeviceKind::kCpu;
  EnergyConfig config;
  config.rapl_root = rapl.root();
  EXPECT_EQ((*MakeMeter(cpu, config))->source(),
            device::EnergySource::kMeasured);
  config.cpu_energy = "model";
  EXPECT_EQ((*MakeMeter(cpu, config))->source(),
            device::EnergySource::kModeled);
  config.cpu_energy = "auto";
  config.rapl_root = "/nonexistent";
  auto fallback = MakeMeter(cpu, config);
  EXPECT_EQ((*fallback)->source(), device::EnergySource::kModeled);
  EXPECT_THAT((*fallback)->Describe(), HasSubstr("RAPL not available"));
  config.cpu_energy = "rapl";
  EXPECT_EQ(MakeMeter(cpu, config).status().code(),
            absl::StatusCode::kNotFound);
  config.cpu_energy = "guess";
  EXPECT_EQ(MakeMeter(cpu, config).status().code(),
            absl::StatusCode::kInvalidArgument);

  device::Capabilities sim;
  sim.name = "riscv";
  sim.kind = device::DeviceKind::kRiscvSim;
  sim.energy_source = device::EnergySource::kSimulated;
  sim.reports_energy = true;
  EXPECT_EQ((*MakeMeter(sim, config))->source(),
            device::EnergySource::kSimulated);

  auto models = ParsePowerModels("fpga=40:25, cpu=12.5:3");
  ASSERT_TRUE(models.ok());
  EXPECT_EQ(models->at("fpga").active_watts, 40);
  EXPECT_EQ(models->at("cpu").idle_watts, 3);
  EXPECT_FALSE(ParsePowerModels("fpga=40").ok());
  EXPECT_FALSE(ParsePowerModels("fpga=a:b").ok());
}

TEST(AttributionTest, SharesFollowWorkAndAddUpToTheStep) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> dist(1e3, 1e9);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<double> work(1 + rng() % 64);
    for (double& w : work) w = dist(rng);
    const double step = dist(rng) * 1e-9;
    auto shares = AttributeEnergy(step, work);
    double sum = 0;
    for (double s : shares) sum += s;
    EXPECT_NEAR(sum, step, 1e-3 * step);  // The issue asks for 0.1%.
    EXPECT_NEAR(shares[0] / step,
                work[0] / std::accumulate(work.begin(), work.end(), 0.0), 1e-9);
  }
  auto equal = AttributeEnergy(3.0, {0, 0, 0});
  EXPECT_DOUBLE_EQ(equal[1], 1.0);
}

TEST(MetricsTest, ExpositionNamesTypesAndLabels) {
  Metrics m;
  m.Step("cpu", "decode", absl::Milliseconds(3));
  m.StepEnergy("cpu", device::EnergySource::kModeled, "decode", 0.05);
  m.Step("cpu", "mixed", absl::Milliseconds(9));
  m.StepEnergy("cpu", device::EnergySource::kModeled, "prefill", 0.15);
  m.StepEnergy("cpu", device::EnergySource::kModeled, "decode", std::nullopt);
  m.Routed("cpu", "energy");
  m.Token("cpu", device::EnergySource::kModeled, 0.05);
  m.PromptTokens("cpu", 12);
  m.InterTokenLatency("cpu", absl::Milliseconds(4));
  m.Request("grpc", "cpu", "OK", absl::Milliseconds(20), absl::Milliseconds(90),
            absl::Microseconds(300));
  m.Request("http", "", "400", std::nullopt, absl::Microseconds(50),
            std::nullopt);
  GaugeCollector gauges([] {
    DeviceGauges g;
    g.device = "cpu";
    g.source = device::EnergySource::kModeled;
    g.queued = 2;
    g.running = 3;
    g.kv_usage = 0.25;
    static double joules = 0;
    joules += 1.0;
    g.total_joules = joules;
    return std::vector<DeviceGauges>{g};
  });
  gauges.Collect();
  absl::SleepFor(absl::Milliseconds(20));
  auto families = m.registry()->Collect();
  auto gauge_families = gauges.Collect();
  families.insert(families.end(), gauge_families.begin(), gauge_families.end());
  const std::string text = prometheus::TextSerializer().Serialize(families);
  for (const char* line : {
           "# TYPE joule_energy_joules_total counter",
           "# TYPE joule_token_energy_joules histogram",
           "# TYPE joule_generated_tokens_total counter",
           "# TYPE joule_prompt_tokens_total counter",
           "# TYPE joule_time_to_first_token_seconds histogram",
           "# TYPE joule_inter_token_latency_seconds histogram",
           "# TYPE joule_request_duration_seconds histogram",
           "# TYPE joule_queue_time_seconds histogram",
           "# TYPE joule_step_duration_seconds histogram",
           "# TYPE joule_requests_total counter",
           "# TYPE joule_routed_requests_total counter",
           "joule_routed_requests_total{device=\"cpu\",policy=\"energy\"} 1",
           "# TYPE joule_queue_depth gauge",
           "# TYPE joule_running_sequences gauge",
           "# TYPE joule_kv_usage_ratio gauge",
           "# TYPE joule_device_power_watts gauge",
           "# TYPE joule_device_healthy gauge",
           "joule_energy_joules_total{device=\"cpu\",phase=\"decode\",source="
           "\"modeled\"} 0.05",
           "joule_prompt_tokens_total{device=\"cpu\"} 12",
           "joule_requests_total{api=\"http\",code=\"400\"} 1",
           "joule_time_to_first_token_seconds_count{api=\"grpc\",device="
           "\"cpu\"} 1",
           "joule_step_duration_seconds_count{device=\"cpu\",phase=\"mixed\"}"
           " 1",
           "joule_energy_joules_total{device=\"cpu\",phase=\"prefill\","
           "source=\"modeled\"} 0.15",
           "joule_queue_depth{device=\"cpu\"} 2",
           "joule_kv_usage_ratio{device=\"cpu\"} 0.25",
           "joule_device_healthy{device=\"cpu\"} 1",
       }) {
    EXPECT_THAT(text, HasSubstr(line));
  }
  // Power: 1 J over the ~20 ms between the two scrapes.
  EXPECT_THAT(
      text,
      HasSubstr("joule_device_power_watts{device=\"cpu\",source=\"modeled\"}"));
}

}  // namespace
}  // namespace joule::telemetry
