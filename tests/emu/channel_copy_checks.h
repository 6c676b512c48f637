#pragma once
// The channel-copy and concatenation checks of the fp32 kernels' test (test_kernel_concat_pool.cpp)
// and of the bf16 kernels' test (test_kernel_bf16.cpp), written once on the element type: the
// kernels differ only in it, so their tests do too.
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "kernel_test_support.h"
#include "kernels/concat.h"

namespace chex::testing {

// A channel copy between two batch-strided buffers, in elements. Each buffer holds `*_channels`
// channels per image plus `*_pad` elements of padding, and starts `*_shift` elements into its
// allocation (a shift of other than a multiple of 16 bytes, 4 floats or 8 bf16, breaks 16-byte
// alignment).
struct CopyCase {
  int64_t batch, spatial, channels;
  int64_t src_channels, src_offset, src_pad, src_shift;
  int64_t dst_channels, dst_offset, dst_pad, dst_shift;
  int64_t src_stride() const { return src_channels * spatial + src_pad; }
  int64_t dst_stride() const { return dst_channels * spatial + dst_pad; }
  int64_t src_elements() const { return src_shift + batch * src_stride(); }
  int64_t dst_elements() const { return dst_shift + batch * dst_stride(); }
};

// Built with a stream: GCC 12 warns falsely (-Wrestrict) on chains of std::string +.
inline std::string describe(const CopyCase& c) {
  std::ostringstream out;
  out << "batch " << c.batch << ", spatial " << c.spatial << ", channels " << c.channels << ", src [" << c.src_channels
      << " ch, offset " << c.src_offset << ", pad " << c.src_pad << ", shift " << c.src_shift << "], dst ["
      << c.dst_channels << " ch, offset " << c.dst_offset << ", pad " << c.dst_pad << ", shift " << c.dst_shift << "]";
  return out.str();
}

// A channel-copy kernel, Src into Dst (a twin or an emulated launcher).
template <typename Src, typename Dst>
using ChannelCopyKernel = void (*)(const kernels::Queue&, const kernels::BasicChannelCopyArgs<Src, Dst>&);

// How a test compares the emulated result with the twin's (check_against_twin or a bitwise twin).
template <typename T>
using TwinCheck = void (*)(const std::string& what, const std::function<std::vector<T>()>& emulated,
                           const std::vector<T>& reference);

// The channel kernels of one element type T (twin and emulated launcher of each), their names in
// messages, how the test draws T values and how it compares an emulated result with the twin's.
template <typename T>
struct ChannelKernels {
  using Copy = ChannelCopyKernel<T, T>;
  using Concat = void (*)(const kernels::Queue&, const kernels::BasicChannelPart<T>*, int, T*, int64_t, int64_t,
                          int64_t);
  using Split = void (*)(const kernels::Queue&, const T*, int64_t, const kernels::BasicChannelPart<T>*, int, int64_t,
                         int64_t);

  std::string suffix;  // appended to the kernel names: "" or "_bf16"
  Copy copy_twin, copy_emu, add_twin, add_emu;
  Concat concat_twin, concat_emu;
  Split split_twin, split_emu;
  std::vector<T> (*random)(int64_t n, Generator& gen);
  TwinCheck<T> check;
};

enum class Modes { copy, add, both };

// One channel-copy kernel (`twin` and the emulated `launcher`) on one case, from `src` onto `dst0`;
// the whole destination (outside the copied range too) must equal the twin's.
template <typename Src, typename Dst>
void check_channel_copy(const std::string& name, ChannelCopyKernel<Src, Dst> twin, ChannelCopyKernel<Src, Dst> launcher,
                        const CopyCase& c, const std::vector<Src>& src, const std::vector<Dst>& dst0,
                        TwinCheck<Dst> check) {
  const auto args = [&](Dst* dst) {
    return kernels::BasicChannelCopyArgs<Src, Dst>{{src.data() + c.src_shift, c.src_stride()}, c.src_offset,
                                                   {dst + c.dst_shift, c.dst_stride()}, c.dst_offset,
                                                   {c.batch, c.channels, c.spatial}};
  };
  std::vector<Dst> reference = dst0;
  twin({}, args(reference.data()));
  check(name + " " + describe(c),
        [&] {
          std::vector<Dst> dst = dst0;
          launcher({}, args(dst.data()));
          return dst;
        },
        reference);
}

// copy_channels and/or add_channels on one case.
template <typename T>
void check_copy_case(const ChannelKernels<T>& k, const CopyCase& c, Generator& gen, Modes modes = Modes::both) {
  const std::vector<T> src = k.random(c.src_elements(), gen);
  const std::vector<T> dst0 = k.random(c.dst_elements(), gen);
  if (modes != Modes::add)
    check_channel_copy<T, T>("copy_channels" + k.suffix, k.copy_twin, k.copy_emu, c, src, dst0, k.check);
  if (modes != Modes::copy)
    check_channel_copy<T, T>("add_channels" + k.suffix, k.add_twin, k.add_emu, c, src, dst0, k.check);
}

// concat_channels and split_channels over several part sets (an empty part; more than 8 parts,
// which take several launches) at several plane sizes. Parts start at shifted addresses so that
// some are misaligned, some padded; each image of the big buffer is followed by `big_pad` elements
// of padding.
template <typename T>
void check_concat_and_split(const ChannelKernels<T>& k, Generator& gen, int64_t big_pad) {
  const std::vector<std::vector<int64_t>> part_sets{{64, 32}, {3, 0, 5, 1, 2, 7, 4, 1, 9, 6}, {1}};
  for (const int64_t spatial : {int64_t{49}, int64_t{196}, int64_t{3}}) {
    for (size_t set = 0; set < part_sets.size(); ++set) {
      const std::vector<int64_t>& channels = part_sets[set];
      DYNAMIC_SECTION("spatial " << spatial << ", part set " << set) {
        const int64_t batch = 3;
        int64_t total = 0;
        std::vector<int64_t> offsets, strides, shifts;
        std::vector<std::vector<T>> inputs;
        for (size_t i = 0; i < channels.size(); ++i) {
          offsets.push_back(total);
          total += channels[i];
          strides.push_back(channels[i] * spatial + static_cast<int64_t>(i % 3));  // some padded images
          shifts.push_back(static_cast<int64_t>(i % 2));
          inputs.push_back(k.random(shifts.back() + batch * strides.back(), gen));
        }
        const int64_t big_stride = total * spatial + big_pad;
        const std::vector<T> big0 = k.random(batch * big_stride, gen);
        auto parts_over = [&](std::vector<std::vector<T>>& buffers) {
          std::vector<kernels::BasicChannelPart<T>> parts;
          for (size_t i = 0; i < channels.size(); ++i)
            parts.push_back({buffers[i].data() + shifts[i], strides[i], channels[i], offsets[i]});
          return parts;
        };
        const int count = static_cast<int>(channels.size());

        // Concatenation: the parts into the big buffer.
        std::vector<T> concat_ref = big0;
        std::vector<std::vector<T>> twin_inputs = inputs;
        k.concat_twin({}, parts_over(twin_inputs).data(), count, concat_ref.data(), big_stride, batch, spatial);
        k.check(
            "concat_channels" + k.suffix,
            [&] {
              std::vector<T> big = big0;
              std::vector<std::vector<T>> emu_inputs = inputs;
              k.concat_emu({}, parts_over(emu_inputs).data(), count, big.data(), big_stride, batch, spatial);
              return big;
            },
            concat_ref);

        // Split: the big buffer back out into the parts (their padding keeps its old values).
        auto flatten = [](const std::vector<std::vector<T>>& buffers) {
          std::vector<T> all;
          for (const auto& b : buffers) all.insert(all.end(), b.begin(), b.end());
          return all;
        };
        std::vector<std::vector<T>> split_ref = inputs;
        k.split_twin({}, big0.data(), big_stride, parts_over(split_ref).data(), count, batch, spatial);
        k.check(
            "split_channels" + k.suffix,
            [&] {
              std::vector<std::vector<T>> outputs = inputs;
              k.split_emu({}, big0.data(), big_stride, parts_over(outputs).data(), count, batch, spatial);
              return flatten(outputs);
            },
            flatten(split_ref));
      }
    }
  }
}

}  // namespace chex::testing
