// libFuzzer target: arbitrary bytes as a configuration file through config::load(), the loader
// and validator `meshgate --check` runs. It must accept the file or return errors located in it
// (FILE:LINE:COL with LINE and COL from 1), never crash or hang. load() turns an exception that
// escapes the readers into an "internal error" result so the gateway keeps running: here that
// is a finding, and the target aborts on it. The target itself catches nothing.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "control/config/config.h"

namespace
{

[[noreturn]] void fail(const std::string &why)
{
    std::fprintf(stderr, "config_fuzz: %s\n", why.c_str());
    std::abort();
}

// The input as a file: load() reads a path. An in-memory file, rewritten per input.
int input_fd = -1;
std::string input_path;

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
    input_fd = memfd_create("config_fuzz.toml", 0);
    if (input_fd < 0) fail("memfd_create failed");
    input_path = "/proc/self/fd/" + std::to_string(input_fd);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ftruncate(input_fd, 0) != 0 || pwrite(input_fd, data, size, 0) != ssize_t(size))
        fail("cannot write the input file");
    // The machine's CPUs must not decide what a file means: a fixed set of 4.
    const meshgate::config::load_result r =
        meshgate::config::load(input_path, meshgate::config::load_options{.cpus = {0, 1, 2, 3}});
    if (r.config.has_value() == !r.errors.empty())
        fail("a result must be a configuration or errors, not both or neither");
    for (const meshgate::config::config_error &e : r.errors) {
        if (e.message.rfind("internal error", 0) == 0) fail("load(): " + e.to_string());
        if (e.line == 0 || e.column == 0 || e.message.empty())
            fail("an error without a location or a message: " + e.to_string());
    }
    return 0;
}
