#include "control/config/syntax.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>

namespace meshgate::config
{

namespace
{

std::string lower_first(std::string s)
{
    if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z') s[0] = static_cast<char>(s[0] - 'A' + 'a');
    return s;
}

std::string system_error(int error)
{
    return lower_first(std::strerror(error));
}

// The whole file, or what kept us from reading it.
struct file_text {
    std::string text;
    std::string error;
};

file_text read_file(const std::string &path)
{
    std::unique_ptr<FILE, int (*)(FILE *)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!f) return {"", "cannot open " + path + ": " + system_error(errno)};
    struct stat st {
    };
    if (fstat(fileno(f.get()), &st) != 0)
        return {"", "cannot read " + path + ": " + system_error(errno)};
    if (S_ISDIR(st.st_mode)) return {"", "cannot read " + path + ": is a directory"};
    file_text out;
    char buf[65536];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) {
        out.text.append(buf, n);
        if (out.text.size() > max_file_bytes)
            return {"", "file is larger than " + std::to_string(max_file_bytes >> 20) + " MiB"};
    }
    if (std::ferror(f.get())) return {"", "cannot read " + path + ": " + system_error(errno)};
    return out;
}

std::string first_line(std::string_view s)
{
    return std::string(s.substr(0, s.find('\n')));
}

} // namespace

std::optional<source_position> too_deep(std::string_view text, unsigned limit)
{
    enum class state { normal, comment, basic, literal, ml_basic, ml_literal };
    state st = state::normal;
    unsigned depth = 0, dots = 0;
    source_position at{1, 1};
    auto starts = [&](size_t i, std::string_view s) { return text.substr(i, s.size()) == s; };
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        const source_position here = at;
        if (c == '\n') at = {at.line + 1, 0}, dots = 0;
        ++at.column;
        switch (st) {
        case state::normal:
            if (c == '#')
                st = state::comment;
            else if (starts(i, "\"\"\"") || starts(i, "'''")) {
                st = c == '"' ? state::ml_basic : state::ml_literal;
                i += 2, at.column += 2;
            } else if (c == '"' || c == '\'')
                st = c == '"' ? state::basic : state::literal;
            else if ((c == '[' || c == '{') && ++depth > limit)
                return here;
            else if ((c == ']' || c == '}') && depth > 0)
                --depth;
            else if (c == '.' && ++dots > limit)
                return here;
            if (c == '[' || c == '{' || c == ']' || c == '}' || c == '=' || c == ',') dots = 0;
            break;
        case state::comment:
            if (c == '\n') st = state::normal;
            break;
        case state::basic:
        case state::ml_basic:
            if (c == '\\' && i + 1 < text.size() && text[i + 1] != '\n')
                ++i, ++at.column;
            else if (st == state::ml_basic && starts(i, "\"\"\""))
                st = state::normal, i += 2, at.column += 2;
            else if (st == state::basic && (c == '"' || c == '\n'))
                st = state::normal;
            break;
        case state::literal:
            if (c == '\'' || c == '\n') st = state::normal;
            break;
        case state::ml_literal:
            if (starts(i, "'''")) st = state::normal, i += 2, at.column += 2;
            break;
        }
    }
    return std::nullopt;
}

std::optional<source_position> long_line(std::string_view text, size_t limit)
{
    uint32_t line = 1;
    while (!text.empty()) {
        const size_t end = std::min(text.find('\n'), text.size());
        if (end > limit) return source_position{line, static_cast<uint32_t>(limit + 1)};
        text.remove_prefix(std::min(end + 1, text.size()));
        ++line;
    }
    return std::nullopt;
}

std::optional<source_position> invalid_utf8(std::string_view text)
{
    static constexpr uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000}; // by sequence length
    source_position at{1, 1};
    for (size_t i = 0; i < text.size();) {
        const auto c = static_cast<unsigned char>(text[i]);
        const size_t n = c < 0x80             ? 1
                         : (c & 0xe0) == 0xc0 ? 2
                         : (c & 0xf0) == 0xe0 ? 3
                         : (c & 0xf8) == 0xf0 ? 4
                                              : 0;
        if (n == 0 || n > text.size() - i) return at;
        uint32_t code = n == 1 ? c : c & (0x7fu >> n);
        for (size_t k = 1; k < n; ++k) {
            const auto next = static_cast<unsigned char>(text[i + k]);
            if ((next & 0xc0) != 0x80) return at;
            code = code << 6 | (next & 0x3fu);
        }
        if (code < smallest[n] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return at;
        if (c == '\n')
            at = {at.line + 1, 1};
        else
            at.column += static_cast<uint32_t>(n);
        i += n;
    }
    return std::nullopt;
}

namespace
{

std::string without_period(std::string s)
{
    while (!s.empty() && (s.back() == '.' || s.back() == ' '))
        s.pop_back();
    return s;
}

} // namespace

std::string syntax_message(std::string_view what, std::string_view note)
{
    std::string line = first_line(what);
    if (line.rfind("[error] ", 0) == 0) line.erase(0, 8);
    if (line.rfind("toml::", 0) == 0)
        line.erase(0, line.find(": ") == std::string::npos ? line.size() : line.find(": ") + 2);
    line = without_period(line);
    const std::string extra = without_period(std::string(note));
    if (line.empty())
        line = extra;
    else if (!extra.empty() && extra != "here")
        line += ": " + extra;
    return line.empty() ? "syntax error" : printable(line, 200);
}

std::optional<syntax_marker> find_marker(std::string_view what, uint32_t line)
{
    const std::string number = std::to_string(line) + " | ";
    std::istringstream in{std::string(what)};
    std::string text;
    bool after_source_line = false;
    while (std::getline(in, text)) {
        const size_t bar = text.find('|');
        if (after_source_line && bar != std::string::npos) {
            const size_t marker = text.find_first_of("^~", bar);
            if (marker != std::string::npos && marker >= bar + 2) {
                const size_t note = text.find_first_not_of("^~-", marker);
                return syntax_marker{static_cast<uint32_t>(marker - (bar + 2) + 1),
                                     note == std::string::npos ? "" : text.substr(note + 1)};
            }
        }
        const size_t start = text.find_first_not_of(' ');
        after_source_line =
            start != std::string::npos && text.compare(start, number.size(), number) == 0;
    }
    return std::nullopt;
}

std::optional<toml::value> parse_toml_file(const std::string &file, error_list &errors)
{
    file_text f = read_file(file);
    if (!f.error.empty()) {
        errors.add(source_position{0, 0}, f.error);
        return std::nullopt;
    }
    if (auto at = too_deep(f.text, max_nesting)) {
        errors.add(*at, "nested deeper than " + std::to_string(max_nesting) + " levels");
        return std::nullopt;
    }
    if (auto at = invalid_utf8(f.text)) {
        errors.add(*at, "not UTF-8");
        return std::nullopt;
    }
    if (auto at = long_line(f.text, max_line_bytes)) {
        errors.add(*at, "line longer than " + std::to_string(max_line_bytes) + " characters");
        return std::nullopt;
    }
    try {
        std::istringstream in(std::move(f.text));
        return toml::parse(in, file);
    } catch (const toml::exception &e) {
        const uint32_t line = e.location().line();
        const auto marker = find_marker(e.what(), line);
        errors.add(source_position{line, marker ? marker->column : e.location().column()},
                   syntax_message(e.what(), marker ? marker->note : ""));
    } catch (const std::exception &e) {
        errors.add(source_position{1, 1}, "cannot parse: " + printable(first_line(e.what())));
    }
    return std::nullopt;
}

} // namespace meshgate::config
