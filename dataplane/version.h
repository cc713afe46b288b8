#pragma once

namespace meshgate
{
// The release, as meson's project(version:) gives it.
const char *version();
} // namespace meshgate
