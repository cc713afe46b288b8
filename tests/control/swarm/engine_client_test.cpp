// engine_client against real HTTP peers on this machine: a small server on a unix socket and on
// TCP that answers what each test wants (a document, an error, an endless body, a stream of
// events cut anywhere), read through libcurl as the swarm sync reads the Engine API.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <netinet/in.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "control/swarm/engine_client.h"

namespace meshgate
{
namespace
{

using namespace std::chrono_literals;

// One connection at a time: reads the request, hands it to ANSWER with a send function.
class http_peer
{
  public:
    using answer_fn = std::function<void(const std::string &request,
                                         const std::function<bool(const std::string &)> &send)>;

    http_peer(bool unix_socket, answer_fn answer) : answer_(std::move(answer))
    {
        if (unix_socket) {
            path_ = "/tmp/engine_client_test." + std::to_string(getpid()) + ".sock";
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
        if (!path_.empty()) unlink(path_.c_str());
    }

    const std::string &endpoint() const { return endpoint_; }
    std::vector<std::string> requests; // their first lines

  private:
    void serve()
    {
        while (!stopping_) {
            const int c = accept(fd_, nullptr, nullptr);
            if (c < 0) return;
            std::string request;
            char buf[4096];
            while (request.find("\r\n\r\n") == std::string::npos) {
                const ssize_t n = read(c, buf, sizeof buf);
                if (n <= 0) break;
                request.append(buf, size_t(n));
            }
            requests.push_back(request.substr(0, request.find("\r\n")));
            answer_(request, [c](const std::string &bytes) {
                return send(c, bytes.data(), bytes.size(), MSG_NOSIGNAL) == ssize_t(bytes.size());
            });
            close(c);
        }
    }

    answer_fn answer_;
    int fd_ = -1;
    std::string path_, endpoint_;
    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

std::string response(int status, const std::string &body)
{
    return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n" +
           "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
           body;
}

config::swarm_section at(const std::string &endpoint)
{
    config::swarm_section s;
    s.endpoint = endpoint;
    return s;
}

TEST(EngineClient, GetsADocumentOverTheUnixSocketAndTcpWithTheApiVersion)
{
    for (bool unix_socket : {true, false}) {
        http_peer peer(unix_socket, [](const std::string &, const auto &send) {
            send(response(200, R"([{"ID":"x"}])"));
        });
        engine_client client(at(peer.endpoint()));
        const std::string filters =
            "/tasks?filters=" + url_encoded(R"({"desired-state":["running"]})");
        const engine_response r = client.get(filters, 2s);
        EXPECT_TRUE(r.ok()) << r.error();
        EXPECT_EQ(r.body, R"([{"ID":"x"}])");
        ASSERT_EQ(peer.requests.size(), 1u);
        EXPECT_EQ(peer.requests[0],
                  "GET /v1.41/tasks?filters=%7B%22desired-state%22%3A%5B%22running%22"
                  "%5D%7D HTTP/1.1");
    }
}

TEST(EngineClient, AnHttpErrorIsItsStatusAndMessage)
{
    http_peer peer(true, [](const std::string &, const auto &send) {
        send(response(404, "{\"message\":\"network ingress not found\"}\n"));
    });
    engine_client client(at(peer.endpoint()));
    const engine_response r = client.get("/networks/ingress", 2s);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.error(), R"(HTTP 404: {"message":"network ingress not found"})");
}

TEST(EngineClient, NoServerIsAnErrorNotAWait)
{
    engine_client client(at("unix:///tmp/engine_client_test.nobody.sock"));
    const engine_response r = client.get("/version", 3600s);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.error().find("connect"), std::string::npos) << r.error(); // not a time-out
}

TEST(EngineClient, AnAnswerWithoutEndIsCutAtTheLimit)
{
    // A manager (or something posing as one) that sends forever: the read ends, with a reason,
    // once the answer passes engine_max_answer.
    http_peer peer(true, [](const std::string &, const auto &send) {
        if (!send("HTTP/1.1 200 X\r\nContent-Type: application/json\r\n\r\n[")) return;
        const std::string chunk(1 << 20, ' ');
        while (send(chunk)) {
        }
    });
    engine_client client(at(peer.endpoint()));
    const engine_response r = client.get("/tasks", 60s);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.error(), "the answer is larger than 256 MiB");
}

TEST(EngineClient, AStreamGivesWholeLinesHoweverTheyAreCut)
{
    http_peer peer(true, [](const std::string &, const auto &send) {
        send("HTTP/1.1 200 X\r\nContent-Type: application/json\r\n\r\n");
        // Three events cut in the middle of lines, with an empty line, then the server closes.
        for (const char *piece : {R"({"Type":"serv)", "ice\"}\n{\"Type\":\"node\"}\n\n{\"Ty",
                                  "pe\":\"container\"}\n"}) {
            send(piece);
            std::this_thread::sleep_for(20ms);
        }
    });
    engine_client client(at(peer.endpoint()));
    std::vector<std::string> lines;
    const engine_response end =
        client.stream("/events", [&](std::string_view l) { lines.emplace_back(l); });
    EXPECT_EQ(lines, (std::vector<std::string>{R"({"Type":"service"})", R"({"Type":"node"})",
                                               R"({"Type":"container"})"}));
    EXPECT_EQ(end.error(), "the server ended the stream");
}

// A stream the server keeps open and quiet, and a request the server never answers, each
// with an hour to go: only the client's stop ends them, and it does.
TEST(EngineClient, AStreamStopsWhenAskedWhileTheServerIsQuiet)
{
    std::atomic<bool> done{false};
    http_peer peer(true, [&](const std::string &, const auto &send) {
        send("HTTP/1.1 200 X\r\nContent-Type: application/json\r\n\r\n");
        while (!done)
            std::this_thread::sleep_for(10ms);
    });
    std::atomic<bool> keep{true};
    engine_client client(at(peer.endpoint()), [&] { return keep.load(); });
    std::thread stop([&] {
        std::this_thread::sleep_for(300ms);
        keep = false;
    });
    const engine_response end = client.stream("/events", [](std::string_view) {});
    stop.join();
    done = true;
    EXPECT_EQ(end.error(), "stopped");
}

TEST(EngineClient, ARequestStopsWhenAskedWhileTheServerSaysNothing)
{
    std::atomic<bool> done{false};
    http_peer peer(true, [&](const std::string &, const auto &) {
        while (!done)
            std::this_thread::sleep_for(10ms);
    });
    std::atomic<bool> keep{true};
    engine_client client(at(peer.endpoint()), [&] { return keep.load(); });
    std::thread stop([&] {
        std::this_thread::sleep_for(300ms);
        keep = false;
    });
    const engine_response r = client.get("/tasks", 3600s);
    stop.join();
    done = true;
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.error(), "stopped");
}

} // namespace
} // namespace meshgate
