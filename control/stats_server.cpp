#include "control/stats_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "control/net_text.h"

namespace meshgate
{

namespace
{

sockaddr_in parse_listen(const std::string &listen)
{
    size_t colon = listen.rfind(':');
    auto host = parse_ipv4(std::string_view(listen).substr(0, colon));
    if (colon == std::string::npos || !host)
        throw std::runtime_error("stats listen '" + listen + "' is not HOST:PORT");
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(host->value);
    sa.sin_port = htons(static_cast<uint16_t>(std::stoul(listen.substr(colon + 1))));
    return sa;
}

void write_all(int fd, std::string_view data)
{
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n <= 0) return;
        data.remove_prefix(static_cast<size_t>(n));
    }
}

} // namespace

stats_server::stats_server(const std::string &listen, render_fn render) : render_(std::move(render))
{
    sockaddr_in sa = parse_listen(listen);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0 ||
        ::listen(fd_, 16) != 0) {
        std::string why = std::strerror(errno);
        if (fd_ >= 0) ::close(fd_);
        throw std::runtime_error("stats listen " + listen + ": " + why);
    }
    spdlog::info("serving metrics on http://{}/metrics", listen);
}

stats_server::~stats_server()
{
    if (fd_ >= 0) ::close(fd_);
}

void stats_server::poll(int timeout_ms)
{
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return;
    int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) return;
    serve(client);
    ::close(client);
}

void stats_server::serve(int client)
{
    timeval tv{0, 200000}; // a slow client cannot hold the control thread
    ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string request;
    char buf[1024];
    while (request.find("\r\n\r\n") == std::string::npos && request.size() < 8192) {
        ssize_t n = ::recv(client, buf, sizeof buf, 0);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
    }
    bool metrics = request.starts_with("GET /metrics ") || request.starts_with("GET /metrics?");
    std::string body = metrics ? render_() : "not found: try /metrics\n";
    std::string head = std::string(metrics ? "HTTP/1.0 200 OK\r\n" : "HTTP/1.0 404 Not Found\r\n") +
                       "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                       "Content-Length: " +
                       std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
    write_all(client, head);
    write_all(client, body);
}

} // namespace meshgate
