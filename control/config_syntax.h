// Reading a config file into a TOML tree: the file checks and the TOML syntax errors.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <toml.hpp>

#include "control/config_toml.h"

namespace meshgate::config
{

constexpr size_t max_file_bytes = 1 << 20; // a config is a few kilobytes
constexpr unsigned max_nesting = 32;       // our tables nest 2 deep; toml11 recurses

// Reads FILE and parses it as TOML; on failure adds one error and returns nothing.
std::optional<toml::value> parse_toml_file(const std::string &file, error_list &errors);

// Where TEXT nests arrays, inline tables or dotted keys deeper than `limit`, if it does:
// toml11 parses those recursively and would overflow the stack.
std::optional<source_position> too_deep(std::string_view text, unsigned limit);

// A toml::syntax_error's what() cut to its message: "missing value after '='".
std::string syntax_message(std::string_view what);

// The column of the first ^ or ~ marker that toml11 draws under line `line` in what().
std::optional<uint32_t> marker_column(std::string_view what, uint32_t line);

} // namespace meshgate::config
