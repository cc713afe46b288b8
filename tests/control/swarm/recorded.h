// The Engine API answers recorded from a real Docker 20.10 one-node swarm (engine_api/; how they
// were made: its README), for the swarm tests.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace meshgate
{

// The recorded answer NAME (e.g. "tasks.json"), as the manager sent it.
inline std::string recorded(const std::string &name)
{
    std::ifstream in(std::string(MESHGATE_ENGINE_API_DIR) + "/" + name);
    EXPECT_TRUE(in) << name;
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

} // namespace meshgate
