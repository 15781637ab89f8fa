// Umbrella header for the Flatlane C++ runtime.
#pragma once

#include "flatlane/channel.hpp"
#include "flatlane/duplex.hpp"
#include "flatlane/error.hpp"
#include "flatlane/layout.hpp"
#include "flatlane/liveness.hpp"
#include "flatlane/segment.hpp"
#include "flatlane/service.hpp"
#include "flatlane/topic.hpp"
#include "flatlane/wait.hpp"
