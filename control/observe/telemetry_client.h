// A client of a DPDK process's telemetry socket (/var/run/dpdk/PREFIX/dpdk_telemetry.v2): what
// meshgatectl speaks to the gateway, the protocol dpdk-telemetry.py speaks.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace meshgate
{

class telemetry_client
{
  public:
    // Connects to the telemetry socket of the DPDK process with FILE_PREFIX; throws
    // std::runtime_error naming the socket when there is none or it does not answer.
    explicit telemetry_client(const std::string &file_prefix);
    ~telemetry_client();
    telemetry_client(const telemetry_client &) = delete;
    telemetry_client &operator=(const telemetry_client &) = delete;

    // The reply to COMMAND ("/meshgate/tasks,40"): the value under the command's name.
    nlohmann::ordered_json call(const std::string &command);

    // Every page of a paged listing, concatenated column by column; PARAMS follow the offset.
    nlohmann::ordered_json call_all(const std::string &command, const std::string &params = "",
                                    size_t limit = SIZE_MAX);

  private:
    int fd_ = -1;
    std::string path_;
};

// Columns of equal length ({"name": [...], "id": [...]}) to rows ([{"name":..,"id":..}, ...]),
// leaving out the listing's bookkeeping keys (total, next, connections).
nlohmann::ordered_json rows_of(const nlohmann::ordered_json &columns);

} // namespace meshgate
