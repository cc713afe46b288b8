#include "control/runtime/file_watch.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <sys/inotify.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

namespace meshgate
{

file_watch::file_watch(const std::string &path, std::chrono::milliseconds debounce)
    : debounce_(debounce)
{
    const std::filesystem::path p(path);
    name_ = p.filename().string();
    const std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
    fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ < 0 || inotify_add_watch(fd_, dir.c_str(),
                                     IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_MODIFY) < 0) {
        spdlog::warn("not watching {} for changes: {}", path, std::strerror(errno));
        if (fd_ >= 0) close(fd_);
        fd_ = -1;
    }
}

file_watch::~file_watch()
{
    if (fd_ >= 0) close(fd_);
}

bool file_watch::poll(clock::time_point now)
{
    if (fd_ < 0) return false;
    alignas(inotify_event) char buf[4096];
    for (;;) {
        const ssize_t n = read(fd_, buf, sizeof buf);
        if (n <= 0) break;
        for (ssize_t off = 0; off < n;) {
            const auto *e = reinterpret_cast<const inotify_event *>(buf + off);
            if (e->len > 0 && name_ == e->name) changed_at_ = now;
            off += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
        }
    }
    if (!changed_at_ || now - *changed_at_ < debounce_) return false;
    changed_at_.reset();
    return true;
}

} // namespace meshgate
