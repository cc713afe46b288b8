// The Prometheus endpoint: prometheus-cpp's pull exposer serves /metrics from its own threads
// (civetweb), so no client, however slow, holds up the control thread; at each scrape the
// collector reads the current view and the workers' counters.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "control/observe/stats_view.h"

namespace prometheus
{
class Exposer;
}

namespace meshgate
{

// Every meshgate_* family, from the state's current view and counters.
class gateway_collector : public prometheus::Collectable
{
  public:
    explicit gateway_collector(const stats_state &state) : state_(state) {}
    std::vector<prometheus::MetricFamily> Collect() const override;

  private:
    const stats_state &state_;
};

class metrics_endpoint
{
  public:
    // Serves COLLECTOR at http://LISTEN/metrics (LISTEN is "host:port"). Throws
    // std::runtime_error when it cannot listen there.
    metrics_endpoint(const std::string &listen, std::shared_ptr<prometheus::Collectable> collector);
    ~metrics_endpoint();
    metrics_endpoint(const metrics_endpoint &) = delete;
    metrics_endpoint &operator=(const metrics_endpoint &) = delete;

    const std::string &listen() const { return listen_; }

  private:
    std::string listen_;
    std::shared_ptr<prometheus::Collectable> collector_;
    std::unique_ptr<prometheus::Exposer> exposer_;
};

// The text a scrape returns, for the log at exit and for tests.
std::string render_text(const prometheus::Collectable &collector);

} // namespace meshgate
