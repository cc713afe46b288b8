#include "control/config/errors.h"

#include <algorithm>
#include <cctype>
#include <tuple>

namespace meshgate::config
{

void error_list::add(source_position at, std::string message)
{
    errors_.push_back(config_error{file_, at.line, at.column, std::move(message)});
}

void error_list::add(origin from, source_position at, std::string message)
{
    if (from == origin::file) return add(at, std::move(message));
    errors_.push_back(config_error{std::string(name_of(from)), 0, 0, std::move(message)});
}

std::vector<config_error> error_list::take_sorted(size_t limit)
{
    auto by_position = [](const config_error &a, const config_error &b) {
        return std::tie(a.line, a.column) < std::tie(b.line, b.column);
    };
    auto same = [](const config_error &a, const config_error &b) {
        return std::tie(a.line, a.column, a.message) == std::tie(b.line, b.column, b.message);
    };
    std::vector<config_error> out = std::move(errors_);
    errors_.clear();
    std::stable_sort(out.begin(), out.end(), by_position);
    out.erase(std::unique(out.begin(), out.end(), same), out.end());
    if (out.size() > limit) {
        config_error more = out[limit];
        more.message = "too many errors: " + std::to_string(out.size() - limit) + " more not shown";
        out.resize(limit);
        out.push_back(more);
    }
    return out;
}

std::string printable(std::string_view text, size_t max_length)
{
    std::string out;
    for (char c : text.substr(0, max_length))
        out += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
    return out + (text.size() > max_length ? "..." : "");
}

std::string join(std::span<const std::string_view> words)
{
    std::string out;
    for (std::string_view w : words)
        out += (out.empty() ? "" : ", ") + std::string(w);
    return out;
}

std::string in_quotes(std::string_view text)
{
    return "'" + printable(text) + "'";
}

std::string line_of(source_position at)
{
    return "line " + std::to_string(at.line);
}

void check_unique(error_list &errors, origin from, source_position at, const std::string &key,
                  const std::string &shown, std::map<std::string, source_position> &seen)
{
    auto [it, fresh] = seen.emplace(key, at);
    if (fresh) return;
    if (!it->second.known())
        errors.add(from, at, shown + " is already used");
    else if (it->second.line == at.line)
        errors.add(from, at, shown + " is listed twice");
    else
        errors.add(from, at, shown + " is already used on " + line_of(it->second));
}

} // namespace meshgate::config
