// load(): a config file to a gateway_config, or every error in it.
#include "control/config/config.h"

#include "control/config/errors.h"
#include "control/config/sections.h"
#include "control/config/syntax.h"
#include "control/config/toml.h"

namespace meshgate::config
{

namespace
{

constexpr size_t max_errors = 100;

gateway_config read_config(const toml::value &tree, error_list &errors, const load_options &options)
{
    const table_reader root(tree, "", false,
                            {"dpdk", "port", "neighbor", "overlay", "node", "service", "swarm",
                             "limits", "timeouts", "stats", "log", "reload", "drain", "cluster"},
                            errors);
    gateway_config c;
    c.dpdk = read_dpdk(root, options);
    c.ports = read_ports(root);
    c.neighbors = read_neighbors(root, c.ports);
    c.overlay = read_overlay(root).value_or(overlay_section{});
    c.nodes = read_nodes(root);
    c.services = read_services(root);
    c.swarm = read_swarm(root);
    c.limits = read_limits(root);
    c.timeouts = read_timeouts(root);
    c.stats = read_stats(root);
    c.log = read_log(root);
    c.reload = read_reload(root);
    c.drain = read_drain(root);
    c.cluster = read_cluster(root);
    // What ties the parts together, as for every other input.
    validate(c, errors);
    return c;
}

load_result load_checked(const std::string &file, const load_options &options)
{
    error_list errors(file);
    std::optional<toml::value> tree = parse_toml_file(file, errors);
    if (!tree) return {std::nullopt, errors.take_sorted(max_errors)};
    if (!tree->is_table()) {
        errors.add(source_position{1, 1}, "the file is not a TOML table");
        return {std::nullopt, errors.take_sorted(max_errors)};
    }
    gateway_config config = read_config(*tree, errors, options);
    if (!errors.empty()) return {std::nullopt, errors.take_sorted(max_errors)};
    config.file = file;
    return {std::move(config), {}};
}

} // namespace

std::string config_error::to_string() const
{
    return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

load_result load(const std::string &file)
{
    return load(file, load_options{});
}

std::vector<config_error> validate(const gateway_config &c)
{
    try {
        error_list errors(c.file);
        validate(c, errors);
        return errors.take_sorted(max_errors);
    } catch (const std::exception &e) {
        return {config_error{c.file, 0, 0, std::string("internal error: ") + e.what()}};
    }
}

load_result load(const std::string &file, const load_options &options)
{
    try {
        return load_checked(file, options);
    } catch (const std::exception &e) {
        return {std::nullopt,
                {config_error{file, 0, 0, std::string("internal error: ") + e.what()}}};
    } catch (...) {
        return {std::nullopt, {config_error{file, 0, 0, "internal error"}}};
    }
}

} // namespace meshgate::config
