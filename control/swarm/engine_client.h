// An HTTP client for the Docker Engine API over libcurl: a unix socket, or TCP with TLS
// (client certificate and CA, as `docker --tlsverify`). One client per thread; nothing throws.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "control/config/config.h"

namespace meshgate
{

// The API version asked for: the one whose documents swarm_objects reads (Docker 20.10).
inline constexpr std::string_view engine_api_version = "v1.41";
// What a manager may send: an answer (Docker's ~2 KiB per task: a /tasks of 100,000 tasks is
// ~200 MiB) and one event line. More ends the read as an error, not the gateway's memory.
inline constexpr size_t engine_max_answer = size_t{256} << 20;
inline constexpr size_t engine_max_event = size_t{1} << 20;

struct engine_response {
    long status = 0;  // HTTP status; 0 when there was no answer
    std::string body; // the answer, or why there was none
    bool ok() const { return status == 200; }
    std::string error() const; // "HTTP 404: ..." or the transport's message
};

class engine_client
{
  public:
    // KEEP_GOING, asked at least once a second during every request (default: always true),
    // ends a request at once when it says stop: its answer is then "stopped".
    explicit engine_client(const config::swarm_section &settings,
                           std::function<bool()> keep_going = {});
    ~engine_client();
    engine_client(const engine_client &) = delete;
    engine_client &operator=(const engine_client &) = delete;

    // GET PATH ("/tasks?..."), the whole answer within TIMEOUT.
    engine_response get(std::string_view path, std::chrono::milliseconds timeout);

    // GET PATH and hand each line of the answer to ON_LINE as it comes, until the server ends
    // it or keep_going says stop. Returns how it ended.
    engine_response stream(std::string_view path,
                           const std::function<void(std::string_view line)> &on_line);

  private:
    struct handle;
    void prepare(std::string_view path);

    config::swarm_section settings_;
    std::function<bool()> keep_going_;
    std::string base_url_;
    std::unique_ptr<handle> curl_;
};

// Percent-encodes TEXT for a query string (the filters' JSON), with libcurl.
std::string url_encoded(std::string_view text);

} // namespace meshgate
