// The I/O ceiling for throughput ratios: what testpmd --forward-mode=io does (Debian 12's dpdk
// package does not ship dpdk-testpmd). Every packet received on port P goes out of port P^1,
// untouched, on one lcore, with the same bursts meshgate uses.
//   io_forward SECONDS EAL-ARGS...   prints "io_forward: N packets in S s: X Mpps"
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

namespace
{

constexpr uint16_t burst = 32;

bool start_port(uint16_t port, rte_mempool *pool)
{
    rte_eth_conf conf{};
    return rte_eth_dev_configure(port, 1, 1, &conf) == 0 &&
           rte_eth_rx_queue_setup(port, 0, 1024, rte_eth_dev_socket_id(port), nullptr, pool) ==
               0 &&
           rte_eth_tx_queue_setup(port, 0, 1024, rte_eth_dev_socket_id(port), nullptr) == 0 &&
           rte_eth_dev_start(port) == 0;
}

} // namespace

int main(int argc, char **argv)
{
    if (argc < 2) {
        std::fprintf(stderr, "usage: io_forward SECONDS EAL-ARGS...\n");
        return 2;
    }
    double seconds = std::atof(argv[1]);
    argv[1] = argv[0];
    if (rte_eal_init(argc - 1, argv + 1) < 0) return 1;
    uint16_t ports = rte_eth_dev_count_avail();
    rte_mempool *pool = rte_pktmbuf_pool_create("io_forward", 16383, 256, 0,
                                                RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
    if (ports < 2 || pool == nullptr) return 1;
    for (uint16_t p = 0; p < ports; ++p)
        if (!start_port(p, pool)) return 1;

    uint64_t forwarded = 0;
    rte_mbuf *packets[burst];
    auto start = std::chrono::steady_clock::now();
    auto end = start + std::chrono::duration<double>(seconds);
    for (uint32_t spin = 0;; ++spin) {
        for (uint16_t p = 0; p < 2; ++p) {
            uint16_t n = rte_eth_rx_burst(p, 0, packets, burst);
            uint16_t sent = rte_eth_tx_burst(p ^ 1, 0, packets, n);
            forwarded += sent;
            for (uint16_t i = sent; i < n; ++i)
                rte_pktmbuf_free(packets[i]);
        }
        if ((spin & 1023) == 0 && std::chrono::steady_clock::now() >= end) break;
    }
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("io_forward: %lu packets in %.2f s: %.3f Mpps\n",
                static_cast<unsigned long>(forwarded), took, forwarded / took / 1e6);
    for (uint16_t p = 0; p < ports; ++p) {
        rte_eth_dev_stop(p);
        rte_eth_dev_close(p);
    }
    rte_eal_cleanup();
    return 0;
}
