// HTTP peers for the tests of the Engine API client and the swarm sync (GoogleTest only): real
// servers on this machine that answer what each test wants.
#pragma once

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <netinet/in.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace meshgate::test_support
{

// A server on a unix socket or TCP on this machine: each connection on a thread of its own
// (a stream held open does not hold up the others), its request read and handed to ANSWER
// with a function that sends bytes; the connection closes when ANSWER returns.
class http_peer
{
  public:
    using answer_fn = std::function<void(const std::string &request,
                                         const std::function<bool(const std::string &)> &send)>;

    http_peer(bool unix_socket, answer_fn answer) : answer_(std::move(answer))
    {
        if (unix_socket) {
            path_ = "/tmp/http_peer." + std::to_string(getpid()) + "." + std::to_string(seq_++) +
                    ".sock";
            unlink(path_.c_str());
            fd_ = socket(AF_UNIX, SOCK_STREAM, 0);
            sockaddr_un a{};
            a.sun_family = AF_UNIX;
            std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
            EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
            endpoint_ = "unix://" + path_;
        } else {
            fd_ = socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
            socklen_t len = sizeof a;
            getsockname(fd_, reinterpret_cast<sockaddr *>(&a), &len);
            endpoint_ = "tcp://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
        }
        EXPECT_EQ(listen(fd_, 4), 0);
        thread_ = std::thread([this] { serve(); });
    }

    ~http_peer()
    {
        stopping_ = true;
        shutdown(fd_, SHUT_RDWR);
        close(fd_);
        thread_.join();
        for (std::thread &c : connections_)
            c.join();
        if (!path_.empty()) unlink(path_.c_str());
    }

    const std::string &endpoint() const { return endpoint_; }
    // The first lines of the requests so far.
    std::vector<std::string> requests() const
    {
        std::lock_guard lock(mutex_);
        return requests_;
    }

  private:
    static inline std::atomic<uint32_t> seq_{0};

    void serve()
    {
        while (!stopping_) {
            const int c = accept(fd_, nullptr, nullptr);
            if (c < 0) return;
            connections_.emplace_back([this, c] { answer(c); });
        }
    }

    void answer(int c)
    {
        std::string request;
        char buf[4096];
        while (request.find("\r\n\r\n") == std::string::npos) {
            const ssize_t n = read(c, buf, sizeof buf);
            if (n <= 0) break;
            request.append(buf, size_t(n));
        }
        {
            std::lock_guard lock(mutex_);
            requests_.push_back(request.substr(0, request.find("\r\n")));
        }
        answer_(request, [c](const std::string &bytes) {
            return send(c, bytes.data(), bytes.size(), MSG_NOSIGNAL) == ssize_t(bytes.size());
        });
        close(c);
    }

    answer_fn answer_;
    int fd_ = -1;
    std::string path_, endpoint_;
    std::atomic<bool> stopping_{false};
    std::thread thread_;
    std::vector<std::thread> connections_; // the accepting thread's own
    mutable std::mutex mutex_;
    std::vector<std::string> requests_;
};

// A whole answer: STATUS, a JSON BODY, the connection closed after it.
inline std::string response(int status, const std::string &body)
{
    return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n" +
           "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
           body;
}

} // namespace meshgate::test_support
