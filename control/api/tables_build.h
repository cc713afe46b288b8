// Compiles a validated configuration into the flat tables the workers read, every service and
// task at the index of its stable id.
#pragma once

#include <memory>
#include <vector>

#include "control/api/identities.h"
#include "control/config/config.h"
#include "control/runtime/ports.h"
#include "dataplane/neighbor.h"
#include "dataplane/tables.h"

namespace meshgate
{

struct compile_options {
    bool parallel = true; // build the schedulers that changed on all cores (TBB)
};

// PREVIOUS (may be null) lends the schedulers of services whose tasks and weights did not change.
// SWEEP_EPOCH goes into the tables as it is. Throws only on what validation rules out.
std::unique_ptr<dataplane::dataplane_tables>
build_tables(const config::gateway_config &c, const identities &ids,
             const std::vector<opened_port> &ports, const dataplane::dataplane_tables *previous,
             uint64_t sweep_epoch, const compile_options &options = {});

// T takes over the addresses of ADOPTED (dead peers of the cluster): their underlay addresses
// join the local addresses on C's cluster port.
void set_adopted(const config::gateway_config &c, std::vector<dataplane::adopted_gateway> adopted,
                 dataplane::dataplane_tables &t);

// [[neighbor]] and [[node]].mac entries, on the port whose subnet holds each address; static
// entries that PREVIOUS had on a port where C has them not (gone from the file, or their port
// moved to another subnet) become ordinary ones (ARP refreshes or replaces them).
void install_static_neighbors(const config::gateway_config &c,
                              const config::gateway_config *previous,
                              dataplane::neighbor_table &neighbors);

} // namespace meshgate
