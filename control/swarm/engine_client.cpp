#include "control/swarm/engine_client.h"

#include <mutex>

#include <curl/curl.h>

#include "control/base/edge.h"

namespace meshgate
{

struct engine_client::handle {
    CURL *curl = curl_easy_init();
    char error[CURL_ERROR_SIZE] = {};
    ~handle() { curl_easy_cleanup(curl); }
};

namespace
{

// libcurl's callbacks are called from C: what fails in them ends the transfer (return 0), never
// the process.
size_t append_body(char *data, size_t size, size_t count, void *out)
{
    return at_edge("Engine API answer", size_t{0}, [&] {
        auto *body = static_cast<std::string *>(out);
        if (body->size() + size * count > engine_max_answer) return size_t{0}; // ends it
        body->append(data, size * count);
        return size * count;
    });
}

// A streamed answer: whole lines go to the callback, the rest waits for the next piece.
struct line_splitter {
    const std::function<void(std::string_view)> *on_line;
    std::string pending;
};

size_t split_lines(char *data, size_t size, size_t count, void *out)
{
    return at_edge("Engine API events", size_t{0}, [&] {
        auto *s = static_cast<line_splitter *>(out);
        s->pending.append(data, size * count);
        size_t start = 0;
        for (size_t end; (end = s->pending.find('\n', start)) != std::string::npos; start = end + 1)
            if (end > start) (*s->on_line)(std::string_view(s->pending).substr(start, end - start));
        s->pending.erase(0, start);
        if (s->pending.size() > engine_max_event) return size_t{0}; // no event is that long
        return size * count;
    });
}

// libcurl's progress callback, at least once a second: non-zero aborts the transfer.
int keep_going(void *out, curl_off_t, curl_off_t, curl_off_t, curl_off_t)
{
    return at_edge("Engine API request", 1,
                   [&] { return (*static_cast<const std::function<bool()> *>(out))() ? 0 : 1; });
}

} // namespace

std::string engine_response::error() const
{
    if (status == 0) return body;
    std::string text = body.substr(0, 200);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
        text.pop_back();
    return "HTTP " + std::to_string(status) + (text.empty() ? "" : ": " + text);
}

engine_client::engine_client(const config::swarm_section &settings,
                             std::function<bool()> keep_going)
    : settings_(settings), keep_going_(keep_going ? std::move(keep_going) : [] { return true; }),
      curl_(std::make_unique<handle>())
{
    static std::once_flag global;
    std::call_once(global, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    const std::string_view endpoint = settings_.endpoint;
    const bool tls = !settings_.tls_ca.empty() || !settings_.tls_cert.empty();
    if (endpoint.starts_with("unix://"))
        base_url_ = "http://docker/" + std::string(engine_api_version); // the host is not used
    else
        base_url_ = std::string(tls ? "https://" : "http://") +
                    std::string(endpoint.substr(endpoint.find("://") + 3)) + "/" +
                    std::string(engine_api_version);
}

engine_client::~engine_client() = default;

void engine_client::prepare(std::string_view path)
{
    CURL *c = curl_->curl;
    curl_easy_reset(c);
    const std::string url = base_url_ + std::string(path);
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_->error);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, keep_going);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &keep_going_);
    if (settings_.endpoint.starts_with("unix://"))
        curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, settings_.endpoint.c_str() + 7);
    if (!settings_.tls_ca.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, settings_.tls_ca.c_str());
    if (!settings_.tls_cert.empty()) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, settings_.tls_cert.c_str());
        curl_easy_setopt(c, CURLOPT_SSLKEY, settings_.tls_key.c_str());
    }
    curl_->error[0] = '\0';
}

engine_response engine_client::get(std::string_view path, std::chrono::milliseconds timeout)
{
    if (curl_->curl == nullptr) return {0, "libcurl could not start"};
    prepare(path);
    CURL *c = curl_->curl;
    engine_response r;
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    const CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
        r.body = "stopped";
        return r;
    }
    if (rc == CURLE_WRITE_ERROR) {
        r.body = "the answer is larger than " + std::to_string(engine_max_answer >> 20) + " MiB";
        return r;
    }
    if (rc != CURLE_OK) {
        r.body = curl_->error[0] ? curl_->error : curl_easy_strerror(rc);
        return r;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    return r;
}

engine_response engine_client::stream(std::string_view path,
                                      const std::function<void(std::string_view)> &on_line)
{
    if (curl_->curl == nullptr) return {0, "libcurl could not start"};
    prepare(path);
    CURL *c = curl_->curl;
    line_splitter lines{&on_line, {}};
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, split_lines);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &lines);
    // An idle stream sends nothing for minutes: TCP keepalives, not a silence limit, tell a
    // manager that went away without closing (a unix socket needs neither).
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 10L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 5L);
    const CURLcode rc = curl_easy_perform(c);
    engine_response r;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    if (r.status == 200) r.status = 0; // a stream has no success: only how it ended
    if (rc == CURLE_ABORTED_BY_CALLBACK)
        r.body = "stopped";
    else if (rc != CURLE_OK)
        r.body = curl_->error[0] ? curl_->error : curl_easy_strerror(rc);
    else
        r.body = "the server ended the stream";
    return r;
}

std::string url_encoded(std::string_view text)
{
    // libcurl's escape needs no handle and no global init (curl 7.82+).
    char *escaped = curl_easy_escape(nullptr, text.data(), static_cast<int>(text.size()));
    if (escaped == nullptr) return {};
    std::string out(escaped);
    curl_free(escaped);
    return out;
}

} // namespace meshgate
