// A minimal HTTP/1.0 endpoint on the control thread: GET /metrics answers Prometheus text.
// One request per connection, served inline; the control thread has nothing more urgent.
#pragma once

#include <functional>
#include <string>

namespace meshgate
{

class stats_server
{
  public:
    using render_fn = std::function<std::string()>;

    // LISTEN is "host:port". Throws when it cannot bind.
    stats_server(const std::string &listen, render_fn render);
    ~stats_server();
    stats_server(const stats_server &) = delete;
    stats_server &operator=(const stats_server &) = delete;

    // Waits up to TIMEOUT_MS for a client and serves it.
    void poll(int timeout_ms);

  private:
    void serve(int client);

    int fd_ = -1;
    render_fn render_;
};

} // namespace meshgate
