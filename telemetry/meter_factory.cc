#include "telemetry/meter_factory.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "telemetry/rapl_meter.h"

namespace joule::telemetry {

absl::StatusOr<std::map<std::string, PowerModel>> ParsePowerModels(
    const std::string& spec) {
  std::map<std::string, PowerModel> models;
  for (absl::string_view item :
       absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    item = absl::StripAsciiWhitespace(item);
    std::vector<std::string> kv = absl::StrSplit(item, '=');
    std::vector<std::string> watts = kv.size() == 2
                                         ? absl::StrSplit(kv[1], ':')
                                         : std::vector<std::string>();
    PowerModel m;
    if (watts.size() != 2 || !absl::SimpleAtod(watts[0], &m.active_watts) ||
        !absl::SimpleAtod(watts[1], &m.idle_watts) || m.active_watts < 0 ||
        m.idle_watts < 0 || kv[0].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad power model '", item,
                       "': use device=active_watts:idle_watts, e.g. cpu=15:5"));
    }
    models[kv[0]] = m;
  }
  return models;
}

absl::StatusOr<std::unique_ptr<EnergyMeter>> MakeMeter(
    const device::Capabilities& caps, const EnergyConfig& config) {
  if (caps.reports_energy) {
    const char* kind =
        caps.energy_source == device::EnergySource::kSimulated  ? "simulated"
        : caps.energy_source == device::EnergySource::kMeasured ? "measured"
                                                                : "modeled";
    return std::make_unique<DeviceReportedMeter>(
        caps.energy_source, absl::StrCat(kind, ": reported by the ", caps.name,
                                         " device for each step"));
  }
  auto it = config.models.find(caps.name);
  const PowerModel model =
      it != config.models.end() ? it->second : config.default_model;
  std::string why;
  if (caps.kind == device::DeviceKind::kCpu && config.cpu_energy != "model") {
    if (config.cpu_energy != "auto" && config.cpu_energy != "rapl") {
      return absl::InvalidArgumentError(
          absl::StrCat("--cpu_energy is '", config.cpu_energy,
                       "'; use auto, rapl or model"));
    }
    auto rapl = RaplMeter::Open(config.rapl_root);
    if (rapl.ok()) return std::unique_ptr<EnergyMeter>(*std::move(rapl));
    if (config.cpu_energy == "rapl") return rapl.status();
    why = "RAPL not available here";
  }
  return std::make_unique<PowerModelMeter>(model, why);
}

}  // namespace joule::telemetry
