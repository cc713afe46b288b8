-- single.lua: one UDP flow at a fixed rate through meshgate, then print counters and quit.
--
--   Pktgen port 0 = the clients' side (cabled/memif to meshgate's external port)
--   Pktgen port 1 = the swarm node   (cabled/memif to meshgate's underlay port)
--
-- Run:  pktgen <EAL args> -- -m "1.[0-1]" -f perf/pktgen/single.lua
-- Knobs (environment): PG_RATE   percent of port 0's link speed (default 1)
--                      PG_SECONDS how long to send (default 10)
--                      PG_SIZE    frame size as Pktgen counts it, with the 4-byte FCS (default 64)
--                      PG_COUNT   frames to send, 0 = until PG_SECONDS is over (default 0)
--                      PG_METRICS meshgate metrics URL, "" = don't fetch
--                                 (default http://127.0.0.1:9191/metrics, needs curl)
--                      PG_GW_MAC  meshgate external MAC (default 02:00:00:00:00:10)
--                      PG_DONE    set by run-memif.sh (see the end)
-- Everything here is Pktgen 23.03's Lua API: pktgen.set/set_ipaddr/set_mac/set_proto,
-- start/stop/delay, portStats, quit.

local function env(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then return default end
    return v
end

local rate    = tonumber(env("PG_RATE", "1"))
local seconds = tonumber(env("PG_SECONDS", "10"))
local size    = tonumber(env("PG_SIZE", "64"))
local count   = tonumber(env("PG_COUNT", "0"))
local metrics = env("PG_METRICS", "http://127.0.0.1:9191/metrics")
local gw_mac  = env("PG_GW_MAC", "02:00:00:00:00:10")

local CLIENT, NODE = "0", "1"

-- wait for both links (memif: until meshgate has connected). Pktgen 23.03 refreshes
-- a port's link state only while its main page is drawn, so the screen stays on
-- until both are up; the rest runs with it off (counters are kept all the same).
pktgen.screen("on")
local function links_up()
    local s = pktgen.linkState("all")
    return string.find(s[0], "UP", 1, true) and string.find(s[1], "UP", 1, true)
end
local waited = 0
while not links_up() do
    if waited >= 60 then
        print("single.lua: links not up after 60 s, giving up")
        pktgen.quit()
        return
    end
    pktgen.delay(1000)
    waited = waited + 1
end
pktgen.screen("off")
local ls = pktgen.linkState("all")
print(string.format("links: port 0 %s, port 1 %s", ls[0], ls[1]))

-- the flow: 198.51.100.1:40000 -> 203.0.113.10:9000/udp ----------------------
pktgen.set_mac(CLIENT, "dst", gw_mac)
pktgen.set_ipaddr(CLIENT, "src", "198.51.100.1/24")
pktgen.set_ipaddr(CLIENT, "dst", "203.0.113.10")
pktgen.set_proto(CLIENT, "udp")
pktgen.set(CLIENT, "sport", 40000)
pktgen.set(CLIENT, "dport", 9000)
pktgen.set(CLIENT, "ttl", 64)
pktgen.set(CLIENT, "size", size)
pktgen.set(CLIENT, "rate", rate)
pktgen.set(CLIENT, "count", count)
pktgen.set_range(CLIENT, "off")
pktgen.set_range(NODE, "off")

-- the stats Pktgen keeps are refreshed once a second by its timer: clear, let a
-- refresh pass, send, stop, then let a refresh pass again before reading
pktgen.clr()
pktgen.delay(1500)

print(string.format("sending: rate %s%%, %d-byte frames, %s", rate, size,
      count > 0 and (count .. " frames") or (seconds .. " s")))
pktgen.start(CLIENT)
local elapsed, peak_pps = 0, 0
while elapsed < seconds * 1000 do
    pktgen.delay(1000)
    elapsed = elapsed + 1000
    local r = pktgen.portStats("all", "rate")
    if r[0].pkts_tx > peak_pps then peak_pps = r[0].pkts_tx end
    print(string.format("  t=%2ds tx0 %8d pps  rx1 %8d pps", elapsed // 1000, r[0].pkts_tx, r[1].pkts_rx))
    if count > 0 and pktgen.isSending(CLIENT)[0] == "n" then break end
end
pktgen.stop(CLIENT)
pktgen.delay(2500)

local st = pktgen.portStats("all", "port")
local tx0, rx1, rx0 = st[0].opackets, st[1].ipackets, st[0].ipackets
print(string.format("RESULT single: port0 tx %d (%d B)  port1 rx %d (%d B, VXLAN)  port0 rx %d  " ..
                    "lost %d  oerrors0 %d  imissed1 %d  peak %d pps",
                    tx0, st[0].obytes, rx1, st[1].ibytes, rx0, tx0 - rx1, st[0].oerrors,
                    st[1].imissed, peak_pps))

if metrics ~= "" then
    local f = io.popen("curl -s --max-time 3 " .. metrics .. " 2>/dev/null")
    if f then
        for line in f:lines() do
            if line:find("^meshgate_port_packets_total") or
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
