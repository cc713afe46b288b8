// What crosses a thread's edge or a C callback (DPDK telemetry, civetweb's handlers, libcurl's
// callbacks, the body of a thread): never an exception. One that escapes there ends the process
// (std::terminate), so each such place runs its work through at_edge().
#pragma once

#include <exception>
#include <string_view>
#include <type_traits>
#include <utility>

#include <spdlog/spdlog.h>

namespace meshgate
{

// Logs that an exception (WHAT) came out of WHERE, if the log can take it.
inline void log_escaped(std::string_view where, std::string_view what) noexcept
{
    try {
        spdlog::error("{}: {}", where, what);
    } catch (...) {
    }
}

// FN()'s result, or FALLBACK (logged with WHERE) when an exception comes out of it.
template <typename Fn, typename T = std::invoke_result_t<Fn &>>
requires(!std::is_void_v<T>) T at_edge(std::string_view where, T fallback, Fn &&fn)
noexcept
{
    try {
        return fn();
    } catch (const std::exception &e) {
        log_escaped(where, e.what());
    } catch (...) {
        log_escaped(where, "an exception of unknown type");
    }
    return fallback;
}

// Runs FN(); an exception that comes out of it is logged with WHERE.
template <typename Fn>
requires std::is_void_v<std::invoke_result_t<Fn &>>
void at_edge(std::string_view where, Fn &&fn) noexcept
{
    try {
        fn();
    } catch (const std::exception &e) {
        log_escaped(where, e.what());
    } catch (...) {
        log_escaped(where, "an exception of unknown type");
    }
}

} // namespace meshgate
