// The typed layer over the runtime: FlatBuffers messages built in and read from ring frames and
// topic slots.
// Header-only; needs FlatBuffers' C++ headers (2.0.8, the version of flatc that generated the
// message code). Generated `<schema>.flatlane.hpp` files include this.
#pragma once

#include "flatlane/typed/duplex.hpp"
#include "flatlane/typed/endpoints.hpp"
#include "flatlane/typed/receiver.hpp"
#include "flatlane/typed/sender.hpp"
#include "flatlane/typed/service.hpp"
#include "flatlane/typed/spec.hpp"
#include "flatlane/typed/topic_endpoints.hpp"
