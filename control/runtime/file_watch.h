// Tells when the config file has changed and then stayed quiet for a while. Editors write in
// several steps, or write a new file and rename it over the old one, so the directory is
// watched for the file's name rather than the file itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace meshgate
{

class file_watch
{
  public:
    using clock = std::chrono::steady_clock;

    // Watches PATH; on failure (no inotify) it logs and never reports a change.
    file_watch(const std::string &path, std::chrono::milliseconds debounce);
    ~file_watch();
    file_watch(const file_watch &) = delete;
    file_watch &operator=(const file_watch &) = delete;

    // Takes the pending events without blocking; true once the file changed and has been quiet
    // for the debounce time since its last change.
    bool poll(clock::time_point now);

  private:
    int fd_ = -1;
    std::string name_;
    std::chrono::milliseconds debounce_;
    std::optional<clock::time_point> changed_at_;
};

} // namespace meshgate
