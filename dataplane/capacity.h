// What one gateway holds: the limits that the config validation checks and the tables and
// counters are sized by. One place, so that --check, start and reload agree.
#pragma once

#include <cstdint>

namespace meshgate::dataplane
{

inline constexpr uint16_t max_ports = 8;       // [[port]] tables
inline constexpr uint32_t max_services = 1024; // [[service]] tables
inline constexpr uint32_t max_tasks = 16384;   // tasks over all services
inline constexpr uint32_t max_nodes = 1024;    // [[node]] tables
// [[service.port]] entries over all services: a listener index is 16 bits, UINT16_MAX is "none".
inline constexpr uint32_t max_listeners = 65535;

// Ids are stable while anything names them, so removed services and tasks keep theirs until
// their connections are gone: room for the configured ones and as many on their way out.
inline constexpr uint32_t service_id_capacity = 2 * max_services;
inline constexpr uint32_t task_id_capacity = 2 * max_tasks;
static_assert(task_id_capacity <= UINT16_MAX && service_id_capacity <= UINT16_MAX,
              "connections keep 16-bit service and task ids");

} // namespace meshgate::dataplane
