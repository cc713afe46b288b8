#include "dataplane/version.h"

namespace meshgate
{
const char *version()
{
    return MESHGATE_VERSION;
}
} // namespace meshgate
