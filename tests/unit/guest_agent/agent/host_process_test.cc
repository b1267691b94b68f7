// Host-process test of kiln-init (being written).
#include <gtest/gtest.h>
