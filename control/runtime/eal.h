// EAL arguments built from [dpdk] and the ports' devices.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "control/config/config.h"

namespace meshgate
{

// "0000:3b:00.0" and "3b:00.0" (with or without devargs) are PCI; anything else is a vdev.
bool is_pci_device(std::string_view device);

// The name DPDK gives the port: the device string up to its first comma.
std::string device_name(std::string_view device);

std::vector<std::string> eal_arguments(const config::gateway_config &c);

} // namespace meshgate
