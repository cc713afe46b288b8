// at_edge(): what comes out of a C callback or a thread's body is a value, never an exception.
#include <gtest/gtest.h>

#include <stdexcept>

#include "control/base/edge.h"

namespace meshgate
{
namespace
{

TEST(AtEdge, AResultPassesThrough)
{
    EXPECT_EQ(at_edge("test", -1, [] { return 7; }), 7);
}

TEST(AtEdge, AnExceptionBecomesTheFallback)
{
    EXPECT_EQ(at_edge("test", -1, []() -> int { throw std::runtime_error("no"); }), -1);
    EXPECT_EQ(at_edge("test", size_t{0}, []() -> size_t { throw 42; }), 0u);
}

TEST(AtEdge, AVoidBodyThatThrowsEnds)
{
    bool ran = false;
    at_edge("test", [&] {
        ran = true;
        throw std::logic_error("no");
    });
    EXPECT_TRUE(ran);
}

} // namespace
} // namespace meshgate
