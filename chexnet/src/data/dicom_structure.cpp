// A structural walk of a DICOM Part 10 file before DCMTK parses it, as the PNG chunk walk and the
// JPEG marker walk do for theirs: DCMTK allocates each value at its declared length before it finds
// that the file ends sooner (the fuzzer made it ask for 3.4 GB from a 4 KB file), and it recurses
// into nested sequences without a bound. Every element, item and fragment must fit inside the
// file (or inside its enclosing item or sequence), and sequences nest at most kMaxDepth deep.
#include <array>
#include <cstring>

#include "chex/error.h"
#include "image_formats.h"

namespace chex::data::detail {
namespace {

constexpr uint32_t kUndefined = 0xFFFFFFFF;
constexpr int kMaxDepth = 16;  // real files nest 3-4 sequences deep
constexpr uint16_t kItemGroup = 0xFFFE;
constexpr uint16_t kItem = 0xE000, kItemEnd = 0xE00D, kSequenceEnd = 0xE0DD;

struct Syntax {
  bool explicit_vr = true;
  bool little_endian = true;
};

// Explicit-VR elements whose length is 4 bytes after 2 reserved ones (PS3.5 7.1.2).
bool has_long_length(const char vr[2]) {
  static constexpr std::array<const char*, 13> kLong = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ",
                                                        "SV", "UC", "UN", "UR", "UT", "UV"};
  for (const char* v : kLong)
    if (vr[0] == v[0] && vr[1] == v[1]) return true;
  return false;
}

// Where a run of elements ends: at the end of its region, at the end of the file meta group, or
// at the delimiter of an item of undefined length.
enum class Until { RegionEnd, MetaEnd, ItemEnd };

class Walker {
 public:
  Walker(std::span<const uint8_t> bytes, const std::string& where) : b_(bytes), where_(where) {}

  // Walks elements from `pos` up to `end` (or what `until` says); returns the position after them.
  size_t elements(size_t pos, size_t end, Syntax syntax, int depth, Until until) {
    CHEX_CHECK(depth <= kMaxDepth, where_, ": the DICOM file nests sequences more than ", kMaxDepth,
               " deep; it is corrupt");
    while (pos < end) {
      need(pos, 8, end);
      const uint16_t group = u16(pos, syntax), element = u16(pos + 2, syntax);
      if (until == Until::MetaEnd && group != 0x0002) return pos;
      if (group == kItemGroup) {
        CHEX_CHECK(until == Until::ItemEnd && element == kItemEnd, where_, ": misplaced item tag at byte ", pos,
                   "; the DICOM file is corrupt");
        return pos + 8;
      }
      size_t header = 8;
      uint32_t length = 0;
      bool raw_items = false, implicit_inside = false;
      if (syntax.explicit_vr) {
        const char vr[2] = {static_cast<char>(b_[pos + 4]), static_cast<char>(b_[pos + 5])};
        if (has_long_length(vr)) {
          need(pos, 12, end);
          header = 12;
          length = u32(pos + 8, syntax);
        } else {
          length = u16(pos + 6, syntax);
        }
        raw_items = vr[0] == 'O' && vr[1] == 'B';         // encapsulated pixel data: fragments
        implicit_inside = vr[0] == 'U' && vr[1] == 'N';    // UN of undefined length holds implicit VR
      } else {
        length = u32(pos + 4, syntax);
        raw_items = group == 0x7FE0 && element == 0x0010;
      }
      pos += header;
      if (length == kUndefined) {
        Syntax inner = syntax;
        if (implicit_inside) inner.explicit_vr = false;
        pos = items(pos, end, inner, depth + 1, raw_items);
      } else {
        need(pos, length, end);
        pos += length;
      }
    }
    CHEX_CHECK(until != Until::ItemEnd, where_, ": a sequence item runs past the end of the file; the DICOM file is "
               "truncated, export it again");
    return pos;
  }

 private:
  // Items up to the sequence delimiter; each item's elements are walked (fragments only measured).
  size_t items(size_t pos, size_t end, Syntax syntax, int depth, bool raw) {
    CHEX_CHECK(depth <= kMaxDepth, where_, ": the DICOM file nests sequences more than ", kMaxDepth,
               " deep; it is corrupt");
    while (true) {
      need(pos, 8, end);
      const uint16_t group = u16(pos, syntax), element = u16(pos + 2, syntax);
      const uint32_t length = u32(pos + 4, syntax);
      CHEX_CHECK(group == kItemGroup && (element == kItem || element == kSequenceEnd), where_,
                 ": expected a sequence item at byte ", pos, "; the DICOM file is corrupt");
      pos += 8;
      if (element == kSequenceEnd) return pos;
      if (length == kUndefined) {
        CHEX_CHECK(!raw, where_, ": a pixel data fragment of undefined length; the DICOM file is corrupt");
        pos = elements(pos, end, syntax, depth + 1, Until::ItemEnd);
      } else {
        need(pos, length, end);
        if (!raw) elements(pos, pos + length, syntax, depth + 1, Until::RegionEnd);
        pos += length;
      }
    }
  }

  void need(size_t pos, uint64_t count, size_t end) const {
    CHEX_CHECK(pos <= end && count <= end - pos, where_, ": the DICOM file is truncated (", count,
               " bytes declared at byte ", pos, ", ", end - std::min(pos, end), " remain); export it again");
  }
  uint16_t u16(size_t p, Syntax s) const {
    return s.little_endian ? static_cast<uint16_t>(b_[p] | (b_[p + 1] << 8)) : be16(&b_[p]);
  }
  uint32_t u32(size_t p, Syntax s) const {
    return s.little_endian ? (uint32_t{b_[p]} | (uint32_t{b_[p + 1]} << 8) | (uint32_t{b_[p + 2]} << 16) |
                              (uint32_t{b_[p + 3]} << 24))
                           : be32(&b_[p]);
  }

  std::span<const uint8_t> b_;
  const std::string& where_;
};

// The Transfer Syntax UID (0002,0010) of the file meta group, "" if absent.
std::string transfer_syntax(std::span<const uint8_t> b, size_t meta_begin, size_t meta_end) {
  size_t pos = meta_begin;
  while (pos + 8 <= meta_end) {
    const uint16_t element = static_cast<uint16_t>(b[pos + 2] | (b[pos + 3] << 8));
    const char vr[2] = {static_cast<char>(b[pos + 4]), static_cast<char>(b[pos + 5])};
    const bool long_form = has_long_length(vr);
    const size_t header = long_form ? 12 : 8;
    const uint32_t length = long_form ? (uint32_t{b[pos + 8]} | (uint32_t{b[pos + 9]} << 8) |
                                         (uint32_t{b[pos + 10]} << 16) | (uint32_t{b[pos + 11]} << 24))
                                      : static_cast<uint32_t>(b[pos + 6] | (b[pos + 7] << 8));
    if (element == 0x0010) {
      std::string uid(reinterpret_cast<const char*>(&b[pos + header]), length);
      while (!uid.empty() && (uid.back() == '\0' || uid.back() == ' ')) uid.pop_back();
      return uid;
    }
    pos += header + length;  // the walk has checked these lengths
  }
  return "";
}

}  // namespace

void check_dicom_lengths(std::span<const uint8_t> bytes, const std::string& where) {
  Walker walker(bytes, where);
  constexpr size_t kMetaBegin = 132;
  // The file meta group is explicit VR little endian whatever the data set's syntax.
  const size_t meta_end = walker.elements(kMetaBegin, bytes.size(), Syntax{}, 0, Until::MetaEnd);
  const std::string uid = transfer_syntax(bytes, kMetaBegin, meta_end);
  CHEX_CHECK(uid != "1.2.840.10008.1.2.1.99", where,
             ": the DICOM file is deflated (transfer syntax 1.2.840.10008.1.2.1.99), which chex does not read; "
             "convert it to uncompressed DICOM first, e.g. with GDCM: gdcmconv --raw IN.dcm OUT.dcm");
  Syntax syntax;
  if (uid == "1.2.840.10008.1.2") syntax.explicit_vr = false;
  if (uid == "1.2.840.10008.1.2.2") syntax.little_endian = false;
  // Some writers label an implicit-VR data set explicit; DCMTK (and pydicom) read it anyway when the
  // would-be VR is not two capital letters, so the walk does the same.
  const auto capital = [](uint8_t c) { return c >= 'A' && c <= 'Z'; };
  if (syntax.explicit_vr && meta_end + 6 <= bytes.size() &&
      !(capital(bytes[meta_end + 4]) && capital(bytes[meta_end + 5])))
    syntax.explicit_vr = false;
  walker.elements(meta_end, bytes.size(), syntax, 0, Until::RegionEnd);
}

}  // namespace chex::data::detail
