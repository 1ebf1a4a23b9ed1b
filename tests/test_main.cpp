// The doctest runner. Every test file includes ember/ember.hpp, so the suite links several
// translation units that include the whole library: a non-inline function in a header fails here.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "ember/ember.hpp"
