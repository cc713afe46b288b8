// The TCP state machine alone: a pure function, checked against packet sequences.
#include "dataplane/tcp_state.h"

#include <gtest/gtest.h>

namespace mg = meshgate::dataplane;
using mg::direction;
using mg::tcp_state;
namespace f = mg::tcp_flag;

namespace
{

constexpr auto fwd = direction::forward;
constexpr auto rev = direction::reverse;

struct step {
    direction dir;
    uint8_t flags;
    tcp_state expect;
};

// Feeds packets from `start` and checks the state after each one.
void walk(tcp_state start, std::initializer_list<step> steps)
{
    tcp_state s = start;
    int i = 0;
    for (const step &p : steps) {
        s = mg::next_state(s, p.dir, p.flags);
        EXPECT_EQ(s, p.expect) << "packet " << i << ": got " << mg::to_string(s) << ", want "
                               << mg::to_string(p.expect);
        i++;
    }
}

} // namespace

// Compile-time: the function is usable in constant expressions.
static_assert(mg::next_state(tcp_state::none, direction::forward, mg::tcp_flag::syn) ==
              tcp_state::syn_recv);

TEST(TcpState, HandshakeThenClientCloses)
{
    walk(tcp_state::none, {
                              {fwd, f::syn, tcp_state::syn_recv},
                              {rev, f::syn | f::ack, tcp_state::syn_recv},
                              {fwd, f::ack, tcp_state::established},
                              {fwd, f::ack, tcp_state::established}, // data
                              {rev, f::ack, tcp_state::established}, // data
                              {fwd, f::fin | f::ack, tcp_state::close_wait},
                              {rev, f::ack, tcp_state::close_wait},
                              {rev, f::fin | f::ack, tcp_state::time_wait},
                              {fwd, f::ack, tcp_state::time_wait},
                          });
}

TEST(TcpState, HandshakeThenTaskCloses)
{
    walk(tcp_state::none, {
                              {fwd, f::syn, tcp_state::syn_recv},
                              {rev, f::syn | f::ack, tcp_state::syn_recv},
                              {fwd, f::ack, tcp_state::established},
                              {rev, f::fin | f::ack, tcp_state::fin_wait},
                              {fwd, f::ack, tcp_state::fin_wait},
                              {fwd, f::fin | f::ack, tcp_state::time_wait},
                              {rev, f::ack, tcp_state::time_wait},
                          });
}

TEST(TcpState, ResetFromEitherSide)
{
    walk(tcp_state::established, {{fwd, f::rst, tcp_state::close}});
    walk(tcp_state::established, {{rev, f::rst | f::ack, tcp_state::close}});
    // Task refuses the connection: RST to the client's SYN.
    walk(tcp_state::none, {
                              {fwd, f::syn, tcp_state::syn_recv},
                              {rev, f::rst | f::ack, tcp_state::close},
                          });
    // RST wins over every other flag.
    EXPECT_EQ(mg::next_state(tcp_state::established, fwd, f::rst | f::syn | f::fin),
              tcp_state::close);
    // A client RST during the handshake is ignored (IPVS: could be spoofed).
    EXPECT_EQ(mg::next_state(tcp_state::syn_recv, fwd, f::rst), tcp_state::syn_recv);
}

TEST(TcpState, NoFlagsOrBadStateKeepsState)
{
    for (size_t s = 0; s < mg::tcp_state_count; s++) {
        const auto st = static_cast<tcp_state>(s);
        EXPECT_EQ(mg::next_state(st, fwd, 0), st);
        EXPECT_EQ(mg::next_state(st, rev, 0x08 /* PSH only */), st);
    }
    EXPECT_EQ(mg::next_state(tcp_state::count, fwd, f::syn), tcp_state::count);
}

TEST(TcpState, AckNeverEstablishesWithoutSyn)
{
    EXPECT_EQ(mg::next_state(tcp_state::none, fwd, f::ack), tcp_state::close);
}

TEST(TcpState, SynRetransmitStaysInHandshake)
{
    EXPECT_EQ(mg::next_state(tcp_state::syn_recv, fwd, f::syn), tcp_state::syn_recv);
    EXPECT_EQ(mg::next_state(tcp_state::syn_recv, rev, f::syn | f::ack), tcp_state::syn_recv);
}

TEST(TcpState, PortReuseOnlyForClientSynOnClosingStates)
{
    EXPECT_TRUE(mg::is_port_reuse(tcp_state::time_wait, fwd, f::syn));
    EXPECT_TRUE(mg::is_port_reuse(tcp_state::close, fwd, f::syn));
    EXPECT_TRUE(mg::is_port_reuse(tcp_state::close, fwd, f::syn | 0x08)); // PSH is irrelevant
    EXPECT_FALSE(mg::is_port_reuse(tcp_state::time_wait, fwd, f::syn | f::ack));
    EXPECT_FALSE(mg::is_port_reuse(tcp_state::time_wait, rev, f::syn));
    EXPECT_FALSE(mg::is_port_reuse(tcp_state::time_wait, fwd, f::ack));
    EXPECT_FALSE(mg::is_port_reuse(tcp_state::established, fwd, f::syn));
    EXPECT_FALSE(mg::is_port_reuse(tcp_state::fin_wait, fwd, f::syn));
}

TEST(TcpState, EveryStateHasAName)
{
    for (size_t s = 0; s < mg::tcp_state_count; s++)
        EXPECT_FALSE(mg::to_string(static_cast<tcp_state>(s)).empty());
    EXPECT_EQ(mg::to_string(tcp_state::time_wait), "TIME_WAIT");
}
