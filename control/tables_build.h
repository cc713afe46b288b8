// Compiles a validated configuration into the flat tables the workers read.
#pragma once

#include <memory>
#include <vector>

#include "control/config.h"
#include "control/ports.h"
#include "dataplane/neighbor.h"
#include "dataplane/tables.h"

namespace meshgate
{

std::unique_ptr<dataplane::dataplane_tables> build_tables(const config::gateway_config &c,
                                                          const std::vector<opened_port> &ports);

// [[neighbor]] and [[node]].mac entries, on the port whose subnet holds each address.
void install_static_neighbors(const config::gateway_config &c, const dataplane::dataplane_tables &t,
                              dataplane::neighbor_table &neighbors);

} // namespace meshgate
