#include "control/runtime/eal.h"

#include <algorithm>
#include <cctype>

#if defined(__SANITIZE_ADDRESS__)
#define MESHGATE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MESHGATE_ASAN 1
#endif
#endif

namespace meshgate
{

bool is_pci_device(std::string_view device)
{
    std::string_view name = device.substr(0, device.find(','));
    // Domain is optional: [DDDD:]BB:DD.F
    std::string_view shape = name.size() == 12 ? "xxxx:xx:xx.x" : "xx:xx:xx.x";
    if (name.size() == 7) shape = "xx:xx.x";
    if (name.size() != shape.size()) return false;
    for (size_t i = 0; i < name.size(); ++i) {
        bool hex = std::isxdigit(static_cast<unsigned char>(name[i])) != 0;
        if (shape[i] == 'x' ? !hex : name[i] != shape[i]) return false;
    }
    return true;
}

std::string device_name(std::string_view device)
{
    return std::string(device.substr(0, device.find(',')));
}

std::vector<std::string> eal_arguments(const config::gateway_config &c)
{
    const config::dpdk_section &d = c.dpdk;
    std::vector<std::string> args = {
        "meshgate",     d.lcores_pinned ? "--lcores" : "-l", d.lcores,
        "--main-lcore", std::to_string(d.lcore_ids.at(0)),   "--file-prefix",
        d.file_prefix};
    if (d.memory_mb) {
        args.push_back("-m");
        args.push_back(std::to_string(*d.memory_mb));
    }
    if (d.no_huge) args.push_back("--no-huge");
    bool any_pci = false;
    for (const config::port &p : c.ports) {
        any_pci = any_pci || is_pci_device(p.device);
        args.push_back(is_pci_device(p.device) ? "-a" : "--vdev");
        args.push_back(p.device);
    }
    // Without -a, EAL would take every NIC bound to a DPDK driver on the host.
    if (!any_pci) args.push_back("--no-pci");
#ifdef MESHGATE_ASAN
    // EAL's default base (4 GiB) lies in ASan's shadow gap, so EAL would put its memory where a
    // plain secondary process (dpdk-dumpcap, dpdk-proc-info) may have its libraries.
    bool base_given =
        std::any_of(d.extra_args.begin(), d.extra_args.end(),
                    [](const std::string &a) { return a.starts_with("--base-virtaddr"); });
    if (!base_given) args.push_back("--base-virtaddr=0x200000000000");
#endif
    args.insert(args.end(), d.extra_args.begin(), d.extra_args.end());
    return args;
}

} // namespace meshgate
