#include <catch2/catch.hpp>

#include "chex/allocator.h"
#include "chex/tensor.h"

using namespace chex;

TEST_CASE("allocator: size classes bound the rounding waste", "[allocator]") {
  CHECK(allocation_size_class(1) == 64);
  CHECK(allocation_size_class(64) == 64);
  CHECK(allocation_size_class(65) == 128);
  CHECK(allocation_size_class(4096) == 4096);
  for (size_t bytes : {4097ul, 10000ul, 123457ul, 1ul << 20, (1ul << 20) + 1, 3'000'000'017ul}) {
    const size_t size = allocation_size_class(bytes);
    REQUIRE(size >= bytes);
    REQUIRE(size % 64 == 0);
    REQUIRE(static_cast<double>(size) <= bytes * 1.125 + 64);
  }
}

TEST_CASE("allocator: current and peak bytes after a known sequence", "[allocator]") {
  Allocator& a = allocator_for(Device::cpu());
  const AllocatorStats before = a.stats();
  a.reset_peak();
  const size_t base = a.stats().current_bytes;
  REQUIRE(base == before.current_bytes);
  {
    Tensor t1 = Tensor::empty({1024});          // 4096 bytes
    Tensor t2 = Tensor::empty({256, 1024});     // 1 MiB
    CHECK(a.stats().current_bytes == base + 4096 + (1 << 20));
    { Tensor t3 = Tensor::empty({10}); }        // 40 bytes -> 64, freed at once
    CHECK(a.stats().current_bytes == base + 4096 + (1 << 20));
    CHECK(a.stats().peak_bytes == base + 4096 + (1 << 20) + 64);
    Tensor view = t2.narrow(0, 3, 4);            // views allocate nothing
    CHECK(a.stats().current_bytes == base + 4096 + (1 << 20));
  }
  CHECK(a.stats().current_bytes == base);
  CHECK(a.stats().peak_bytes == base + 4096 + (1 << 20) + 64);
  a.reset_peak();
  CHECK(a.stats().peak_bytes == base);
}

TEST_CASE("allocator: freed blocks are reused, not returned to the system", "[allocator]") {
  Allocator& a = allocator_for(Device::cpu());
  void* first = nullptr;
  {
    Tensor t = Tensor::empty({3, 1000, 1000});
    first = t.raw_data();
  }
  const uint64_t system_before = a.stats().system_allocations;
  CHECK(a.stats().cached_bytes >= 12'000'000);
  Tensor again = Tensor::empty({3, 1000, 1000});
  CHECK(again.raw_data() == first);
  CHECK(a.stats().system_allocations == system_before);
  // A slightly smaller request in the same size class reuses a block too.
  again = Tensor();
  Tensor smaller = Tensor::empty({2'990'000});
  CHECK(a.stats().system_allocations == system_before);
  smaller = Tensor();
  a.empty_cache();
  CHECK(a.stats().cached_bytes == 0);
  CHECK(a.stats().reserved_bytes == a.stats().current_bytes);
}
