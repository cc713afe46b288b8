-- range.lua: many UDP flows (source address and source port ranges) to meshgate's
-- published port 9000, at a fixed rate, then print counters and quit.
--
--   Pktgen port 0 = the clients' side (to meshgate's external port)
--   Pktgen port 1 = the swarm node   (from meshgate's underlay port: VXLAN, UDP 4789)
--
-- Run:  pktgen <EAL args> -- -m "1.[0-1]" -f perf/pktgen/range.lua
-- Knobs (environment):
--   PG_RATE        percent of port 0's link speed (default 0.1; memif says 100G: 0.1% = 150k pps at 64 B)
--   PG_SECONDS     how long to send (default 10)
--   PG_SIZE        frame size with FCS (default 64)
--   PG_SRC_MIN/MAX client addresses (default 198.51.100.1 .. 198.51.100.254)
--   PG_SPORT_MIN/MAX client ports  (default 1024 .. 2047)
--   PG_DST, PG_DPORT published address and port (default 203.0.113.10, 9000)
--   PG_GW_MAC      meshgate external MAC (default 02:00:00:00:00:10)
--   PG_METRICS     meshgate metrics URL, "" = don't fetch (default http://127.0.0.1:9191/metrics, needs curl)
--   PG_DONE        set by run-memif.sh (see the end)
--
-- Pktgen increments every range field by its "inc" for each packet it builds, and it
-- builds the range packets once per start into its TX pool (24576 mbufs a port in
-- 23.03), then resends them. So the flows are the first min(24576, cycle) of the
-- sequence, cycle = lcm(#addresses, #ports): 254 x 1024 -> lcm 130048 -> 24576 flows.
-- meshgate's meshgate_connection_table_entries shows how many it saw.

local function env(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then return default end
    return v
end

local rate      = tonumber(env("PG_RATE", "0.1"))
local seconds   = tonumber(env("PG_SECONDS", "10"))
local size      = tonumber(env("PG_SIZE", "64"))
local src_min   = env("PG_SRC_MIN", "198.51.100.1")
local src_max   = env("PG_SRC_MAX", "198.51.100.254")
local sport_min = tonumber(env("PG_SPORT_MIN", "1024"))
local sport_max = tonumber(env("PG_SPORT_MAX", "2047"))
local dst       = env("PG_DST", "203.0.113.10")
local dport     = tonumber(env("PG_DPORT", "9000"))
local gw_mac    = env("PG_GW_MAC", "02:00:00:00:00:10")
local metrics   = env("PG_METRICS", "http://127.0.0.1:9191/metrics")

local CLIENT, NODE = "0", "1"

-- wait for both links. Pktgen 23.03 refreshes a port's link state only while its
-- main page is drawn: the screen stays on until both are up, then goes off.
pktgen.screen("on")
local function links_up()
    local s = pktgen.linkState("all")
    return string.find(s[0], "UP", 1, true) and string.find(s[1], "UP", 1, true)
end
local waited = 0
while not links_up() do
    if waited >= 60 then
        print("range.lua: links not up after 60 s, giving up")
        pktgen.quit()
        return
    end
    pktgen.delay(1000)
    waited = waited + 1
end
pktgen.screen("off")
local ls = pktgen.linkState("all")
print(string.format("links: port 0 %s, port 1 %s", ls[0], ls[1]))

-- the single packet is the template Pktgen falls back on: make it UDP too
pktgen.set_proto(CLIENT, "udp")
pktgen.set(CLIENT, "rate", rate)
pktgen.set(CLIENT, "count", 0)

-- range fields: start, inc, min, max
local function field(f, start, inc, min, max)
    f(CLIENT, "start", start); f(CLIENT, "inc", inc); f(CLIENT, "min", min); f(CLIENT, "max", max)
end
pktgen.range.dst_mac(CLIENT, "start", gw_mac)
pktgen.range.src_mac(CLIENT, "start", "02:00:00:00:01:00")
pktgen.range.ip_proto(CLIENT, "udp")
field(pktgen.range.src_ip, src_min, "0.0.0.1", src_min, src_max)
field(pktgen.range.dst_ip, dst, "0.0.0.0", dst, dst)
field(pktgen.range.src_port, sport_min, 1, sport_min, sport_max)
field(pktgen.range.dst_port, dport, 0, dport, dport)
field(pktgen.range.ttl, 64, 0, 64, 64)
field(pktgen.range.pkt_size, size, 0, size, size)
pktgen.set_range(CLIENT, "on")
pktgen.set_range(NODE, "off")

pktgen.clr()
pktgen.delay(1500)

print(string.format("sending: range %s-%s ports %d-%d -> %s:%d/udp, rate %s%%, %d-byte frames, %d s",
      src_min, src_max, sport_min, sport_max, dst, dport, rate, size, seconds))
pktgen.start(CLIENT)
local elapsed, peak_pps = 0, 0
while elapsed < seconds * 1000 do
    pktgen.delay(1000)
    elapsed = elapsed + 1000
    local r = pktgen.portStats("all", "rate")
    if r[0].pkts_tx > peak_pps then peak_pps = r[0].pkts_tx end
    print(string.format("  t=%2ds tx0 %8d pps  rx1 %8d pps", elapsed // 1000, r[0].pkts_tx, r[1].pkts_rx))
end
pktgen.stop(CLIENT)
pktgen.delay(2500)

local st = pktgen.portStats("all", "port")
local tx0, rx1 = st[0].opackets, st[1].ipackets
print(string.format("RESULT range: port0 tx %d (%d B)  port1 rx %d (%d B, VXLAN)  lost %d  " ..
                    "oerrors0 %d  imissed1 %d  peak %d pps",
                    tx0, st[0].obytes, rx1, st[1].ibytes, tx0 - rx1, st[0].oerrors,
                    st[1].imissed, peak_pps))

if metrics ~= "" then
    local f = io.popen("curl -s --max-time 3 " .. metrics .. " 2>/dev/null")
    if f then
        for line in f:lines() do
            if line:find("^meshgate_port_packets_total") or
               line:find("^meshgate_connection_table_entries") or
               (line:find("^meshgate_drops_total") and not line:find(" 0$")) then
                print("  " .. line)
            end
        end
        f:close()
    end
end

-- PG_DONE (set by run-memif.sh): meshgate, a memif client, must stop before Pktgen's
-- memif servers go; say "done" by creating the file, quit once it is gone (10 s at most)
local done = env("PG_DONE", "")
if done ~= "" then
    local f = io.open(done, "w")
    if f then f:close() end
    for _ = 1, 100 do
        f = io.open(done)
        if not f then break end
        f:close()
        pktgen.delay(100)
    end
end
pktgen.quit()
