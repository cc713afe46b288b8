#include "control/observe/telemetry_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace meshgate
{

namespace
{

constexpr size_t reply_room = 1 << 20; // telemetry replies are at most 16 KiB

// Where EAL puts the runtime directory: /var/run/dpdk for root, else $XDG_RUNTIME_DIR/dpdk.
std::vector<std::string> socket_paths(const std::string &prefix)
{
    std::vector<std::string> paths = {"/var/run/dpdk/" + prefix + "/dpdk_telemetry.v2"};
    if (const char *xdg = std::getenv("XDG_RUNTIME_DIR"))
        paths.push_back(std::string(xdg) + "/dpdk/" + prefix + "/dpdk_telemetry.v2");
    paths.push_back("/tmp/dpdk/" + prefix + "/dpdk_telemetry.v2");
    return paths;
}

std::string receive(int fd)
{
    std::string buf(reply_room, '\0');
    const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0)
        throw std::runtime_error(std::string("telemetry socket closed: ") +
                                 (n < 0 ? std::strerror(errno) : "no reply"));
    buf.resize(static_cast<size_t>(n));
    return buf;
}

} // namespace

telemetry_client::telemetry_client(const std::string &file_prefix)
{
    std::string tried;
    for (const std::string &p : socket_paths(file_prefix)) {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (p.size() >= sizeof addr.sun_path) continue;
        std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
        const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
        if (connect(fd, reinterpret_cast<const sockaddr *>(&addr), sizeof addr) == 0) {
            fd_ = fd;
            path_ = p;
            break;
        }
        tried += (tried.empty() ? "" : ", ") + p + " (" + std::strerror(errno) + ")";
        close(fd);
    }
    if (fd_ < 0)
        throw std::runtime_error("no gateway with file prefix '" + file_prefix +
                                 "' is running: " + tried);
    timeval wait{60, 0}; // a reload may take a while
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    receive(fd_); // the greeting: {"version": ..., "pid": ..., "max_output_len": ...}
}

telemetry_client::~telemetry_client()
{
    if (fd_ >= 0) close(fd_);
}

nlohmann::ordered_json telemetry_client::call(const std::string &command)
{
    if (send(fd_, command.data(), command.size(), 0) < 0)
        throw std::runtime_error(path_ + ": " + std::strerror(errno));
    const nlohmann::ordered_json reply = nlohmann::ordered_json::parse(receive(fd_));
    const std::string name = command.substr(0, command.find(','));
    if (!reply.contains(name) || reply[name].is_null())
        throw std::runtime_error("the gateway has no answer to " + command);
    return reply[name];
}

nlohmann::ordered_json telemetry_client::call_all(const std::string &command,
                                                  const std::string &params, size_t limit)
{
    nlohmann::ordered_json all = nlohmann::ordered_json::object();
    size_t offset = 0, rows = 0;
    for (;;) {
        nlohmann::ordered_json page =
            call(command + "," + std::to_string(offset) + (params.empty() ? "" : "," + params));
        for (auto &[key, value] : page.items()) {
            if (!value.is_array()) {
                all[key] = value;
                continue;
            }
            if (!all.contains(key)) all[key] = nlohmann::ordered_json::array();
            for (auto &v : value)
                all[key].push_back(v);
            rows = all[key].size();
        }
        if (!page.contains("next") || rows >= limit) break;
        offset = page["next"].get<size_t>();
    }
    all.erase("next");
    return all;
}

nlohmann::ordered_json rows_of(const nlohmann::ordered_json &columns)
{
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (auto &[key, value] : columns.items()) {
        if (!value.is_array()) continue;
        for (size_t i = 0; i < value.size(); ++i) {
            if (rows.size() <= i) rows.push_back(nlohmann::ordered_json::object());
            rows[i][key] = value[i];
        }
    }
    return rows;
}

} // namespace meshgate
