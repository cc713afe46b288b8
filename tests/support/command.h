// A shell command run to its end, for the tests that check what another program (meshgatectl,
// ip) says.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

namespace meshgate::test_support
{

struct command_result {
    int status = -1;    // its exit status; -1 when it did not exit
    std::string output; // what it wrote to stdout (stderr too, if COMMAND says 2>&1)
};

inline command_result run_command(const std::string &command)
{
    FILE *p = popen(command.c_str(), "r");
    if (p == nullptr) {
        ADD_FAILURE() << "popen failed: " << command;
        return {};
    }
    command_result r;
    std::array<char, 4096> buf;
    for (size_t n; (n = fread(buf.data(), 1, buf.size(), p)) > 0;)
        r.output.append(buf.data(), n);
    const int status = pclose(p);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

} // namespace meshgate::test_support
