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
#include "tests/support/http_peer.h"

namespace meshgate
{
namespace
{

using namespace std::chrono_literals;
using test_support::http_peer;
using test_support::response;

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
        ASSERT_EQ(peer.requests().size(), 1u);
        EXPECT_EQ(peer.requests()[0],
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
TEST(EngineClient, AStreamAndARequestStopWhenAskedWhileTheServerSaysNothing)
{
    for (const bool streamed : {true, false}) {
        std::atomic<bool> done{false};
        http_peer peer(true, [&](const std::string &, const auto &send) {
            if (streamed) send("HTTP/1.1 200 X\r\nContent-Type: application/json\r\n\r\n");
            while (!done)
                std::this_thread::sleep_for(10ms);
        });
        std::atomic<bool> keep{true};
        engine_client client(at(peer.endpoint()), [&] { return keep.load(); });
        std::thread stop([&] {
            std::this_thread::sleep_for(300ms);
            keep = false;
        });
        const engine_response r = streamed ? client.stream("/events", [](std::string_view) {})
                                           : client.get("/tasks", 3600s);
        stop.join();
        done = true;
        EXPECT_EQ(r.error(), "stopped") << (streamed ? "stream" : "request");
    }
}

} // namespace
} // namespace meshgate
