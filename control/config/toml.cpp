#include "control/config/toml.h"

#include <algorithm>
#include <cctype>
#include <memory>

namespace meshgate::config
{

namespace
{

// Where `key` is written on the line of its value: keys have no location of their own in toml11.
source_position key_position(const toml::value &v, std::string_view key)
{
    const auto loc = v.location();
    const std::string &line = loc.line_str();
    const size_t value_start =
        std::min<size_t>(loc.column() == 0 ? 0 : loc.column() - 1, line.size());
    const size_t found = std::string_view(line).substr(0, value_start).rfind(key);
    if (found == std::string_view::npos) return position_of(v);
    return {loc.line(), static_cast<uint32_t>(found + 1)};
}

bool is_name_char(char c, bool dots)
{
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
           (dots && c == '.');
}

} // namespace

// toml11's location() counts the newlines from the start of the file on every call, which
// makes reading a file quadratic in its size (a 4096-task file took a second). Instead, the
// value's byte offset in its source is looked up in an index of line starts, built once per
// source.
source_position position_of(const toml::value &v)
{
    const auto *r = dynamic_cast<const toml::detail::region *>(toml::detail::get_region(v));
    if (r == nullptr || !r->source()) {
        const auto loc = v.location();
        return {loc.line(), loc.column()};
    }
    struct line_index {
        std::weak_ptr<const std::vector<char>> source; // so a new file at the old address misses
        std::vector<size_t> starts;                    // offset of each line's first byte
    };
    thread_local line_index index;
    const std::vector<char> &source = *r->source();
    if (index.source.lock() != r->source()) {
        index.source = r->source();
        index.starts.assign(1, 0);
        for (size_t i = 0; i < source.size(); ++i)
            if (source[i] == '\n') index.starts.push_back(i + 1);
    }
    const auto offset = static_cast<size_t>(r->first() - source.cbegin());
    const auto line = std::upper_bound(index.starts.begin(), index.starts.end(), offset) - 1;
    return {static_cast<uint32_t>(line - index.starts.begin() + 1),
            static_cast<uint32_t>(offset - *line + 1)};
}

// field

void field::type_error(std::string_view expected) const
{
    if (entry_)
        error("each entry of '" + name_ + "' must be " + std::string(expected));
    else
        error("'" + name_ + "' must be " + std::string(expected));
}

std::string field::literal() const
{
    const auto loc = value_->location();
    const std::string &line = loc.line_str();
    if (loc.column() >= 1 && loc.column() - 1 + loc.region() <= line.size())
        return line.substr(loc.column() - 1, loc.region());
    return std::to_string(value_->as_integer());
}

std::optional<std::string> field::text() const
{
    if (!value_) return std::nullopt;
    if (!value_->is_string()) {
        type_error("a string");
        return std::nullopt;
    }
    return value_->as_string().str;
}

std::optional<bool> field::boolean() const
{
    if (!value_) return std::nullopt;
    if (!value_->is_boolean()) {
        type_error("true or false");
        return std::nullopt;
    }
    return value_->as_boolean();
}

std::optional<int64_t> field::integer(int64_t min, int64_t max) const
{
    if (!value_) return std::nullopt;
    if (!value_->is_integer()) {
        type_error("an integer");
        return std::nullopt;
    }
    // toml11 saturates literals beyond 64 bits to the int64 limits: those are out of range here.
    const int64_t v = value_->as_integer();
    if (v < min || v > max || v == INT64_MAX || v == INT64_MIN) {
        error(label() + " " + literal() + " out of range " + std::to_string(min) + ".." +
              std::to_string(max));
        return std::nullopt;
    }
    return v;
}

std::optional<ipv4_address> field::ipv4() const
{
    auto s = text();
    if (!s) return std::nullopt;
    auto a = parse_ipv4(*s);
    if (!a) error(label() + " " + in_quotes(*s) + " is not an IPv4 address like 192.0.2.1");
    return a;
}

std::optional<ipv4_prefix> field::prefix() const
{
    auto s = text();
    if (!s) return std::nullopt;
    auto p = parse_ipv4_prefix(*s);
    if (!p)
        error(label() + " " + in_quotes(*s) +
              " is not an address with prefix length like 192.0.2.1/24");
    return p;
}

std::optional<mac_address> field::unicast_mac() const
{
    auto s = text();
    if (!s) return std::nullopt;
    auto m = parse_mac(*s);
    if (!m) {
        error(label() + " " + in_quotes(*s) + " is not a MAC address like 02:00:00:00:00:01");
        return std::nullopt;
    }
    if (m->is_zero() || m->is_multicast()) {
        error(label() + " " + to_string(*m) + " is " + (m->is_zero() ? "all zeros" : "multicast") +
              ", expected a unicast MAC");
        return std::nullopt;
    }
    return m;
}

std::optional<size_t> field::choice(std::span<const std::string_view> choices) const
{
    auto s = text();
    if (!s) return std::nullopt;
    auto it = std::find(choices.begin(), choices.end(), *s);
    if (it == choices.end()) {
        error(label() + " " + in_quotes(*s) + " is not one of: " + join(choices));
        return std::nullopt;
    }
    return static_cast<size_t>(it - choices.begin());
}

std::optional<std::string> field::name_text(size_t max_length, bool dots) const
{
    auto s = text();
    if (!s) return std::nullopt;
    if (s->empty()) {
        error(label() + " must not be empty");
        return std::nullopt;
    }
    if (s->size() > max_length) {
        error(label() + " " + in_quotes(*s) + " is longer than " + std::to_string(max_length) +
              " characters");
        return std::nullopt;
    }
    if (!std::all_of(s->begin(), s->end(), [dots](char c) { return is_name_char(c, dots); })) {
        error(label() + " " + in_quotes(*s) + " may only contain letters, digits, " +
              (dots ? "'.', " : "") + "'-' and '_'");
        return std::nullopt;
    }
    return s;
}

std::optional<std::vector<field>> field::entries() const
{
    if (!value_) return std::nullopt;
    if (!value_->is_array()) {
        type_error("an array");
        return std::nullopt;
    }
    std::vector<field> out;
    for (const toml::value &v : value_->as_array())
        out.emplace_back(&v, name_, *errors_, true);
    return out;
}

// table_reader

table_reader::table_reader(const toml::value &table, std::string path, bool in_array,
                           std::initializer_list<std::string_view> known_keys, error_list &errors)
    : table_(table), path_(std::move(path)), in_array_(in_array), errors_(errors)
{
    report_unknown_keys(known_keys);
}

std::string table_reader::title() const
{
    return in_array_ ? "[[" + path_ + "]]" : "[" + path_ + "]";
}

std::string table_reader::header(std::string_view key, bool array) const
{
    std::string full = path_.empty() ? std::string(key) : path_ + "." + std::string(key);
    return array ? "[[" + full + "]]" : "[" + full + "]";
}

void table_reader::report_unknown_keys(std::initializer_list<std::string_view> known_keys) const
{
    for (const auto &[key, v] : table_.as_table()) {
        if (std::find(known_keys.begin(), known_keys.end(), key) != known_keys.end()) continue;
        if (!path_.empty())
            errors_.add(key_position(v, key), "unknown key " + in_quotes(key) + " in " + title());
        else if (v.is_table())
            errors_.add(key_position(v, key), "unknown table [" + printable(key) + "]");
        else if (v.is_array() && !v.as_array().empty() && v.as_array().front().is_table())
            errors_.add(key_position(v, key), "unknown table [[" + printable(key) + "]]");
        else
            errors_.add(key_position(v, key),
                        "unknown key " + in_quotes(key) + " at the top level");
    }
}

field table_reader::get(std::string_view key) const
{
    const auto &t = table_.as_table();
    auto it = t.find(std::string(key));
    return field(it == t.end() ? nullptr : &it->second, std::string(key), errors_);
}

field table_reader::required(std::string_view key) const
{
    field f = get(key);
    if (!f) errors_.add(at(), "missing required key '" + std::string(key) + "' in " + title());
    return f;
}

const toml::value *table_reader::table(std::string_view key) const
{
    field f = get(key);
    if (!f) return nullptr;
    if (!f.value().is_table()) {
        errors_.add(key_position(f.value(), key),
                    "'" + std::string(key) + "' must be a table, written " + header(key, false));
        return nullptr;
    }
    return &f.value();
}

std::vector<const toml::value *> table_reader::tables(std::string_view key) const
{
    field f = get(key);
    if (!f) return {};
    const toml::value &v = f.value();
    const bool ok = v.is_array() && std::all_of(v.as_array().begin(), v.as_array().end(),
                                                [](const toml::value &e) { return e.is_table(); });
    if (!ok) {
        errors_.add(key_position(v, key), "'" + std::string(key) +
                                              "' must be an array of tables, written " +
                                              header(key, true));
        return {};
    }
    std::vector<const toml::value *> out;
    for (const toml::value &e : v.as_array())
        out.push_back(&e);
    return out;
}

} // namespace meshgate::config
