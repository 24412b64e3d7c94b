// The version recorded in every compact file this build writes.
#pragma once

namespace rotor {
constexpr const char* kRotorVersion = "0.1.0";
}
