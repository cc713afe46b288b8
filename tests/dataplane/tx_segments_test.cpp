// Chained frames (fragments) on ports without RTE_ETH_TX_OFFLOAD_MULTI_SEGS: joined into one
// segment before TX, or dropped and counted when they do not fit one; nothing leaks. A net_ring
// port loops what it sends back to its RX queue, so the test reads the frames that left.
#include <cstring>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "dataplane/output.h"
#include "dataplane/worker.h"

namespace dp = meshgate::dataplane;

namespace
{

class eal_environment : public ::testing::Environment
{
  public:
    void SetUp() override
    {
        const char *argv[] = {"tx_segments_test",
                              "--no-huge",
                              "-m",
                              "128",
                              "--no-pci",
                              "--vdev=net_ring0",
                              "--file-prefix",
                              "tx_segments_test",
                              "-l",
                              "0",
                              "--log-level=error"};
        ASSERT_GE(rte_eal_init(sizeof argv / sizeof argv[0], const_cast<char **>(argv)), 0);
        pool = rte_pktmbuf_pool_create("tx_seg_pool", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
        ASSERT_NE(pool, nullptr);
        ASSERT_EQ(rte_eth_dev_get_port_by_name("net_ring0", &port_id), 0);
        rte_eth_conf conf{};
        ASSERT_EQ(rte_eth_dev_configure(port_id, 1, 1, &conf), 0);
        ASSERT_EQ(rte_eth_rx_queue_setup(port_id, 0, 256, 0, nullptr, pool), 0);
        ASSERT_EQ(rte_eth_tx_queue_setup(port_id, 0, 256, 0, nullptr), 0);
        ASSERT_EQ(rte_eth_dev_start(port_id), 0);
    }
    void TearDown() override { rte_eal_cleanup(); }

    static inline rte_mempool *pool = nullptr;
    static inline uint16_t port_id = 0;
};
[[maybe_unused]] auto *const eal_env = ::testing::AddGlobalTestEnvironment(new eal_environment);

// A frame of HEAD bytes in its first segment and TAIL in a second, bytes counting up.
rte_mbuf *chain(uint16_t head, uint16_t tail)
{
    rte_mbuf *first = rte_pktmbuf_alloc(eal_environment::pool);
    rte_mbuf *second = rte_pktmbuf_alloc(eal_environment::pool);
    auto *a = reinterpret_cast<uint8_t *>(rte_pktmbuf_append(first, head));
    auto *b = reinterpret_cast<uint8_t *>(rte_pktmbuf_append(second, tail));
    for (uint16_t i = 0; i < head; ++i)
        a[i] = static_cast<uint8_t>(i);
    for (uint16_t i = 0; i < tail; ++i)
        b[i] = static_cast<uint8_t>(head + i);
    EXPECT_EQ(rte_pktmbuf_chain(first, second), 0);
    return first;
}

class TxSegments : public ::testing::Test
{
  protected:
    void SetUp() override
    {
        w = std::make_unique<dp::worker>();
        w->port_count = 1;
        w->port_ids[0] = eal_environment::port_id;
        free_before = rte_mempool_avail_count(eal_environment::pool);
    }

    // What the port sent, received back from its ring.
    std::vector<rte_mbuf *> sent()
    {
        dp::tx_flush(*w, 0);
        rte_mbuf *got[32];
        const uint16_t n = rte_eth_rx_burst(eal_environment::port_id, 0, got, 32);
        return {got, got + n};
    }

    void TearDown() override
    {
        EXPECT_EQ(rte_mempool_avail_count(eal_environment::pool), free_before) << "mbufs leaked";
    }

    std::unique_ptr<dp::worker> w;
    std::unique_ptr<dp::dataplane_tables> t = std::make_unique<dp::dataplane_tables>();
    unsigned free_before = 0;
};

TEST_F(TxSegments, AChainIsJoinedForAPortThatSendsOneSegment)
{
    w->single_segment_ports = 1;
    dp::deliver(*w, *t, chain(60, 900), dp::send_frame(0));
    std::vector<rte_mbuf *> out = sent();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0]->nb_segs, 1);
    ASSERT_EQ(rte_pktmbuf_pkt_len(out[0]), 960u);
    const auto *bytes = rte_pktmbuf_mtod(out[0], const uint8_t *);
    for (uint16_t i = 0; i < 960; ++i)
        ASSERT_EQ(bytes[i], static_cast<uint8_t>(i)) << "byte " << i;
    EXPECT_EQ(w->counters.ports[0].tx_packets, 1u);
    rte_pktmbuf_free(out[0]);
}

TEST_F(TxSegments, AChainTooBigForOneBufferIsDroppedAndCounted)
{
    w->single_segment_ports = 1;
    // The first segment's tailroom (2048 - 1900) cannot take the 1000 bytes of the second.
    dp::deliver(*w, *t, chain(1900, 1000), dp::send_frame(0));
    EXPECT_TRUE(sent().empty());
    EXPECT_EQ(w->counters.drops[static_cast<size_t>(dp::drop_reason::tx_segments)], 1u);
}

TEST_F(TxSegments, APortWithMultiSegsSendsTheChainAsItIs)
{
    dp::deliver(*w, *t, chain(60, 900), dp::send_frame(0));
    std::vector<rte_mbuf *> out = sent();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0]->nb_segs, 2);
    EXPECT_EQ(rte_pktmbuf_pkt_len(out[0]), 960u);
    rte_pktmbuf_free(out[0]);
}

} // namespace
