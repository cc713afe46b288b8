// Collecting the errors of one configuration with their positions, and the text of user values
// in messages. Shared by the TOML readers and the whole-config checks.
#pragma once

#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "control/config/config.h"

namespace meshgate::config
{

// The errors found in one file, in the order they were found.
class error_list
{
  public:
    explicit error_list(std::string file) : file_(std::move(file)) {}

    void add(source_position at, std::string message);
    // About a value of an object from FROM: at its position in the file, else named by its
    // origin ("api:0:0: ...").
    void add(origin from, source_position at, std::string message);
    bool empty() const { return errors_.empty(); }
    size_t size() const { return errors_.size(); }

    // Sorted by line and column, duplicates removed, at most `limit` of them.
    std::vector<config_error> take_sorted(size_t limit);

  private:
    std::string file_;
    std::vector<config_error> errors_;
};

// User text shown in a message: printable characters only, cut short if long; and quoted.
std::string printable(std::string_view text, size_t max_length = 40);
std::string in_quotes(std::string_view text);
// "a, b, c": the values a key may take, in a message.
std::string join(std::span<const std::string_view> words);

// "line 12", for "already used on line 12".
std::string line_of(source_position at);

// Reports SHOWN ("port name 'ext'") at AT when an earlier entry used KEY; remembers KEY otherwise.
void check_unique(error_list &errors, origin from, source_position at, const std::string &key,
                  const std::string &shown, std::map<std::string, source_position> &seen);

// validate() into an error list that may hold the readers' errors already.
void validate(const gateway_config &c, error_list &errors);

} // namespace meshgate::config
