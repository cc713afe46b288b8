// Reading a config file into a TOML tree: the file checks and the TOML syntax errors.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <toml.hpp>

#include "control/config/toml.h"

namespace meshgate::config
{

constexpr size_t max_file_bytes = 1 << 20; // a config is a few kilobytes
constexpr unsigned max_nesting = 32;       // our tables nest 2 deep; toml11 recurses
constexpr size_t max_line_bytes = 2048;    // toml11 copies a value's whole line into each value

// Reads FILE and parses it as TOML; on failure adds one error and returns nothing.
std::optional<toml::value> parse_toml_file(const std::string &file, error_list &errors);

// Where TEXT nests arrays, inline tables or dotted keys deeper than `limit`, if it does:
// toml11 parses those recursively and would overflow the stack.
std::optional<source_position> too_deep(std::string_view text, unsigned limit);

// Where toml11's what() points on a line: its first ^ or ~ marker, and the note after it.
struct syntax_marker {
    uint32_t column = 0;
    std::string note; // "expected newline, but got '2'."
};
std::optional<syntax_marker> find_marker(std::string_view what, uint32_t line);

// Where TEXT has its first line longer than `limit` bytes, if it does: toml11's time grows with
// the square of a line's length.
std::optional<source_position> long_line(std::string_view text, size_t limit);

// Where TEXT first is not UTF-8 (a stray byte, an overlong form, a surrogate, past U+10FFFF),
// if it is not: TOML files must be, and toml11 3.7 reads past the end of its buffer to report
// invalid UTF-8 in a literal string ('...' or '''...''').
std::optional<source_position> invalid_utf8(std::string_view text);

// A toml::syntax_error's what() as one short line: its headline without the "[error]
// toml::parse_xxx: " prefix, then the marker's note: "invalid line format: expected newline".
std::string syntax_message(std::string_view what, std::string_view note);

} // namespace meshgate::config
