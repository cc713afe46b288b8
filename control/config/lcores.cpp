#include "control/config/lcores.h"

#include <sched.h>

#include <algorithm>
#include <bitset>
#include <charconv>
#include <fstream>

namespace meshgate::config
{

namespace
{

std::string_view trim(std::string_view s)
{
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

bool parse_id(std::string_view text, unsigned &id)
{
    text = trim(text);
    if (text.empty() || text.size() > 9) return false;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    return ec == std::errc{} && end == text.data() + text.size();
}

std::string out_of_range(std::string_view what, unsigned id, unsigned max)
{
    return std::string(what) + " " + std::to_string(id) + " out of range 0.." + std::to_string(max);
}

// Adds the lcores of one item ("3", "2-5" or "3@1") to `out`; returns what is wrong, or "".
std::string add_item(std::string_view item, std::bitset<max_lcore_id + 1> &seen, lcore_list &out)
{
    const std::string bad = "bad item '" + std::string(trim(item).substr(0, 20)) + "'";
    const size_t at = item.find('@');
    const size_t dash = item.find('-');
    unsigned first = 0, last = 0, cpu = 0;
    bool ok = false;
    if (at != std::string_view::npos) {
        ok = parse_id(item.substr(0, at), first) && parse_id(item.substr(at + 1), cpu);
        last = first;
        if (ok && cpu > max_cpu_id) return out_of_range("cpu", cpu, max_cpu_id);
        out.pinned = true;
    } else if (dash != std::string_view::npos) {
        ok = parse_id(item.substr(0, dash), first) && parse_id(item.substr(dash + 1), last);
    } else {
        ok = parse_id(item, first);
        last = first;
    }
    if (!ok) return bad;
    for (unsigned id : {first, last})
        if (id > max_lcore_id) return out_of_range("lcore", id, max_lcore_id);
    if (first > last)
        return "range " + std::to_string(first) + "-" + std::to_string(last) + " goes backwards";
    for (unsigned id = first; id <= last; ++id) {
        if (seen.test(id)) return "lcore " + std::to_string(id) + " is listed twice";
        seen.set(id);
        out.ids.push_back(id);
        out.cpus.push_back(at != std::string_view::npos ? cpu : id);
    }
    return "";
}

} // namespace

lcore_list parse_lcore_list(std::string_view text)
{
    lcore_list result;
    std::bitset<max_lcore_id + 1> seen;
    if (trim(text).empty()) result.error = "empty list";
    while (result.error.empty() && !text.empty()) {
        const size_t comma = text.find(',');
        result.error = add_item(text.substr(0, comma), seen, result);
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
        if (comma != std::string_view::npos && text.empty()) result.error = "trailing ','";
    }
    if (!result.error.empty()) {
        result.ids.clear();
        result.cpus.clear();
    }
    return result;
}

std::string format_lcore_list(std::vector<unsigned> ids)
{
    std::sort(ids.begin(), ids.end());
    std::string out;
    for (size_t i = 0; i < ids.size();) {
        size_t j = i;
        while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1)
            ++j;
        out += (out.empty() ? "" : ",") + std::to_string(ids[i]);
        if (j > i) out += "-" + std::to_string(ids[j]);
        i = j + 1;
    }
    return out;
}

std::vector<unsigned> available_cpus()
{
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<unsigned> cpus;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        for (unsigned cpu = 0; cpu <= max_cpu_id; ++cpu)
            if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
        return cpus;
    }
    std::ifstream online("/sys/devices/system/cpu/online");
    std::string line;
    std::getline(online, line);
    return parse_lcore_list(line).ids;
}

} // namespace meshgate::config
