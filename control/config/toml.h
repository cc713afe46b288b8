// Typed, range-checked access to the tables of a parsed TOML file; every problem becomes a
// config_error at the line and column of the offending value. Internal to config loading.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <toml.hpp>

#include "control/config/config.h"
#include "control/config/errors.h"

namespace meshgate::config
{

source_position position_of(const toml::value &v);

// One value of a table (or one entry of an array), named for messages. Conversions report
// a wrong type or a bad value and return nothing; on an absent value they return nothing quietly.
class field
{
  public:
    field() = default;
    field(const toml::value *value, std::string name, error_list &errors, bool entry = false)
        : value_(value), name_(std::move(name)), errors_(&errors), entry_(entry)
    {
    }

    explicit operator bool() const { return value_ != nullptr; }
    const toml::value &value() const { return *value_; }
    source_position at() const { return position_of(*value_); }
    const std::string &name() const { return name_; }
    error_list &errors() const { return *errors_; }
    void error(std::string message) const
    {
        errors_->add(position_of(*value_), std::move(message));
    }

    std::optional<std::string> text() const;
    std::optional<bool> boolean() const;
    std::optional<int64_t> integer(int64_t min, int64_t max) const;
    std::optional<ipv4_address> ipv4() const;
    std::optional<ipv4_prefix> prefix() const;
    std::optional<mac_address> unicast_mac() const;
    // The index of the text in `choices`.
    std::optional<size_t> choice(std::span<const std::string_view> choices) const;
    std::optional<size_t> choice(std::initializer_list<std::string_view> choices) const
    {
        return choice(std::span<const std::string_view>(choices.begin(), choices.size()));
    }
    // A name of 1..max_length characters from [A-Za-z0-9_-] (and '.' when dots is set).
    std::optional<std::string> name_text(size_t max_length, bool dots = false) const;
    std::optional<std::vector<field>> entries() const;

  private:
    void type_error(std::string_view expected) const;
    std::string label() const { return entry_ ? name_ + " entry" : name_; }
    std::string literal() const; // the value as written in the file, for messages

    const toml::value *value_ = nullptr;
    std::string name_;
    error_list *errors_ = nullptr;
    bool entry_ = false;
};

// The keys of one table: reports keys it does not know when built, and missing required ones.
class table_reader
{
  public:
    // `path` names the table in messages: "dpdk", "service.port"; "" for the top level.
    // `in_array`: the table is an entry of an array of tables ([[path]]).
    table_reader(const toml::value &table, std::string path, bool in_array,
                 std::initializer_list<std::string_view> known_keys, error_list &errors);

    field get(std::string_view key) const;      // absent: an empty field
    field required(std::string_view key) const; // absent: "missing required key"
    // A sub-table written [title.key] (absent: nullptr).
    const toml::value *table(std::string_view key) const;
    // An array of tables written [[title.key]] (absent: none).
    std::vector<const toml::value *> tables(std::string_view key) const;

    const toml::value &value() const { return table_; }
    // Where the table starts: its header, or 1:1 for the top level.
    source_position at() const
    {
        return path_.empty() ? source_position{1, 1} : position_of(table_);
    }
    error_list &errors() const { return errors_; }

  private:
    void report_unknown_keys(std::initializer_list<std::string_view> known_keys) const;
    std::string title() const;                                  // "[[port]]"
    std::string header(std::string_view key, bool array) const; // "[[service.port]]"

    const toml::value &table_;
    std::string path_;
    bool in_array_;
    error_list &errors_;
};

} // namespace meshgate::config
