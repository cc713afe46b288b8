// SYN cookies: SipHash-2-4 against its reference vectors, cookies that come back with their
// options, and every way a cookie must fail (another flow, ISN, secret, period, a flipped bit).
#include "dataplane/syn_cookie.h"

#include <random>

#include <gtest/gtest.h>
#include <netinet/in.h>

namespace mg = meshgate::dataplane;

namespace
{

// The reference key 00 01 .. 0f (little-endian words), as in the SipHash paper's vectors.
const mg::siphash_key reference_key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};

TEST(SipHash, MatchesTheReferenceVectors)
{
    EXPECT_EQ(mg::siphash24(reference_key, nullptr, 0), 0x726fdb47dd0e0e31ULL);
    const uint64_t eight_bytes = 0x0706050403020100ULL; // 00 01 .. 07
    EXPECT_EQ(mg::siphash24(reference_key, &eight_bytes, 1), 0x93f5f5799a932462ULL);
}

const mg::siphash_key secret{0x1234567890abcdefULL, 0xfedcba0987654321ULL};
const mg::flow_key client = mg::make_flow_key(0x0100000a, 0x0a7100cb, 0x3930, 0x401f, IPPROTO_TCP);

TEST(SynCookie, ComesBackWithTheClientsOptions)
{
    const uint32_t now = 100000;
    for (const mg::syn_options o : {mg::syn_options{.mss = 1460, .wscale = 7, .sack = true},
                                    mg::syn_options{.mss = 536, .wscale = 15, .sack = false},
                                    mg::syn_options{.mss = 1360, .wscale = 0, .sack = true},
                                    mg::syn_options{.mss = 1220, .wscale = 14, .sack = false}}) {
        const uint32_t cookie = mg::syn_cookie_make(secret, client, 77, now, o);
        const auto back = mg::syn_cookie_check(secret, client, 77, cookie, now);
        ASSERT_TRUE(back.has_value());
        EXPECT_EQ(back->mss, o.mss == 1460 ? 1410 : o.mss); // rounded down to the table
        EXPECT_EQ(back->wscale, o.wscale);
        EXPECT_EQ(back->sack, o.sack);
        // What the connection reads again when our SYN to the task must go again.
        EXPECT_EQ(mg::syn_cookie_options(cookie), *back);
    }
    // An MSS under the smallest keeps the smallest; one between two rounds down.
    const auto small = mg::syn_cookie_check(
        secret, client, 1, mg::syn_cookie_make(secret, client, 1, now, {.mss = 100}), now);
    EXPECT_EQ(small->mss, 536);
    const auto between = mg::syn_cookie_check(
        secret, client, 1, mg::syn_cookie_make(secret, client, 1, now, {.mss = 1300}), now);
    EXPECT_EQ(between->mss, 1220);
}

TEST(SynCookie, ValidForItsPeriodAndTheNextOnly)
{
    const mg::syn_options o{.mss = 1410, .wscale = 7, .sack = true};
    const uint32_t start = 64 * 1000; // the first second of a period
    const uint32_t cookie = mg::syn_cookie_make(secret, client, 5, start, o);
    EXPECT_TRUE(mg::syn_cookie_check(secret, client, 5, cookie, start + 63));
    EXPECT_TRUE(mg::syn_cookie_check(secret, client, 5, cookie, start + 64));
    EXPECT_TRUE(mg::syn_cookie_check(secret, client, 5, cookie, start + 127));
    EXPECT_FALSE(mg::syn_cookie_check(secret, client, 5, cookie, start + 128));
    EXPECT_FALSE(mg::syn_cookie_check(secret, client, 5, cookie, start + 8 * 64)); // wrapped
    EXPECT_FALSE(mg::syn_cookie_check(secret, client, 5, cookie, start - 1));      // the past
}

TEST(SynCookie, FailsForAnotherFlowIsnSecretOrAnyFlippedBit)
{
    const uint32_t now = 777777;
    const mg::syn_options o{.mss = 1410, .wscale = 9, .sack = true};
    const uint32_t cookie = mg::syn_cookie_make(secret, client, 1000, now, o);
    mg::flow_key other = client;
    other.src_port ^= 1;
    EXPECT_FALSE(mg::syn_cookie_check(secret, other, 1000, cookie, now));
    other = client;
    other.dst_ip ^= 0x100;
    EXPECT_FALSE(mg::syn_cookie_check(secret, other, 1000, cookie, now));
    EXPECT_FALSE(mg::syn_cookie_check(secret, client, 1001, cookie, now));
    EXPECT_FALSE(mg::syn_cookie_check({secret.k0, secret.k1 ^ 1}, client, 1000, cookie, now));
    for (uint32_t bit = 0; bit < 32; bit++)
        EXPECT_FALSE(mg::syn_cookie_check(secret, client, 1000, cookie ^ (1u << bit), now)) << bit;
}

// Random ACKs against one secret: about 2^-22 of them pass (none in a million here, most
// likely), and two gateways with the same secret agree on every cookie.
TEST(SynCookie, RandomAcksFailAndSharedSecretsAgree)
{
    std::mt19937_64 rng(42);
    const uint32_t now = 5000;
    uint32_t passed = 0;
    for (uint32_t i = 0; i < 1'000'000; i++)
        passed += mg::syn_cookie_check(secret, client, static_cast<uint32_t>(rng()),
                                       static_cast<uint32_t>(rng()), now)
                      .has_value();
    EXPECT_LE(passed, 2u);
    const mg::siphash_key same = secret;
    for (uint32_t isn = 0; isn < 1000; isn++)
        EXPECT_EQ(mg::syn_cookie_make(secret, client, isn, now, {}),
                  mg::syn_cookie_make(same, client, isn, now, {}));
}

} // namespace
