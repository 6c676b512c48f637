// DICOM: DCMTK parses the file and decodes compressed pixel data (dcmjpeg: JPEG baseline, extended
// and lossless; dcmjpls: JPEG-LS; dcmdata: RLE); this file checks that the image is one greyscale
// frame chex can read, extracts the stored values and hands them to dicom_greyscale.h.
// Why DCMTK, and what is refused: docs/dicom.md.
#include <dcmtk/config/osconfig.h>  // first, as DCMTK requires
#include <dcmtk/dcmdata/dccodec.h>
#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/dcmdata/dcistrmb.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>

#include <bit>
#include <cstring>
#include <mutex>
#include <new>

#include "chex/error.h"
#include "dicom_greyscale.h"
#include "image_formats.h"

namespace chex::data::detail {
namespace {

static_assert(std::endian::native == std::endian::little, "the pixel data is read as little-endian words");

// Codecs and the data dictionary are process-wide in DCMTK: set them up once. DCMTK's own log
// lines are silenced: every problem reaches the user as one chex::Error naming the file.
void init_dcmtk_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    OFLog::configure(OFLogger::OFF_LOG_LEVEL);
    // Read a data set mislabelled in its file meta group (implicit VR labelled explicit, say) as
    // what it is, as pydicom does; dicom_structure.cpp's walk makes the same guess.
    dcmAutoDetectDatasetXfer.set(OFTrue);
    DcmRLEDecoderRegistration::registerCodecs();
    DJDecoderRegistration::registerCodecs();
    DJLSDecoderRegistration::registerCodecs();
  });
}

uint16_t require_us(DcmItem& ds, const DcmTagKey& tag, const char* name, const std::string& where) {
  Uint16 value = 0;
  CHEX_CHECK(ds.findAndGetUint16(tag, value).good(), where, ": the DICOM file has no ", name,
             " attribute, which every image needs; the file is incomplete or not an image");
  return value;
}

uint16_t optional_us(DcmItem& ds, const DcmTagKey& tag, uint16_t fallback) {
  Uint16 value = 0;
  return ds.findAndGetUint16(tag, value).good() ? value : fallback;
}

std::string string_of(DcmItem& ds, const DcmTagKey& tag) {
  OFString value;
  return ds.findAndGetOFString(tag, value).good() ? std::string(value.c_str()) : std::string();
}

// The LUT of the first item of a Modality or VOI LUT Sequence, if there is one.
std::optional<DicomLut> read_lut(DcmItem& ds, const DcmTagKey& sequence, bool signed_pixels, const char* name,
                                 const std::string& where) {
  DcmItem* item = nullptr;
  if (ds.findAndGetSequenceItem(sequence, item, 0).bad() || item == nullptr) return std::nullopt;
  Uint16 descriptor[3] = {0, 0, 0};
  DcmElement* element = nullptr;
  bool ok = item->findAndGetElement(DCM_LUTDescriptor, element).good() && element->getVM() == 3;
  for (unsigned long i = 0; ok && i < 3; ++i) {
    if (element->getUint16(descriptor[i], i).bad()) {
      Sint16 s = 0;  // an SS descriptor (signed first value)
      ok = element->getSint16(s, i).good();
      descriptor[i] = static_cast<Uint16>(s);
    }
  }
  const Uint16* data = nullptr;
  unsigned long entries = 0;
  ok = ok && item->findAndGetUint16Array(DCM_LUTData, data, &entries).good() && data != nullptr;
  CHEX_CHECK(ok, where, ": the ", name, " has no valid LUT Descriptor or LUT Data; the file is corrupt");
  DicomLut lut;
  const size_t count = descriptor[0] == 0 ? 65536 : descriptor[0];
  lut.first = signed_pixels ? static_cast<int16_t>(descriptor[1]) : descriptor[1];
  lut.bits = descriptor[2];
  CHEX_CHECK(lut.bits >= 1 && lut.bits <= 16, where, ": the ", name, " declares ", lut.bits,
             " bits per entry (DICOM allows 8 to 16); the file is corrupt");
  CHEX_CHECK(entries >= count, where, ": the ", name, " holds ", entries, " entries, its descriptor says ", count,
             "; the file is corrupt");
  lut.values.assign(data, data + count);
  return lut;
}

// Stored values, sign-extended, from little-endian pixel data (BitsAllocated 8 or 16).
std::vector<int32_t> stored_values(const uint8_t* pixels, size_t count, int bits_allocated, int bits_stored,
                                   int high_bit, bool is_signed) {
  const int shift = high_bit + 1 - bits_stored;
  const uint32_t mask = (uint32_t{1} << bits_stored) - 1, sign = uint32_t{1} << (bits_stored - 1);
  std::vector<int32_t> out(count);
  for (size_t i = 0; i < count; ++i) {
    const uint32_t raw = bits_allocated == 8 ? pixels[i] : (pixels[2 * i] | (uint32_t{pixels[2 * i + 1]} << 8));
    const uint32_t v = (raw >> shift) & mask;
    out[i] = is_signed && (v & sign) ? static_cast<int32_t>(v) - static_cast<int32_t>(mask) - 1
                                     : static_cast<int32_t>(v);
  }
  return out;
}

}  // namespace

bool is_dicom(std::span<const uint8_t> b) { return b.size() >= 132 && std::memcmp(&b[128], "DICM", 4) == 0; }

DicomLayout check_dicom_structure(std::span<const uint8_t> bytes, const std::string& where) {
  check_dicom_lengths(bytes, where);
  init_dcmtk_once();
  CHEX_CHECK(dcmDataDict.isDictionaryLoaded(), where,
             ": cannot read DICOM files: DCMTK's data dictionary is missing (install the libdcmtk17 package, or "
             "set DCMDICTPATH to its dicom.dic)");
  DicomLayout layout;
  layout.file = std::make_shared<DcmFileFormat>();
  DcmInputBufferStream stream;
  stream.setBuffer(bytes.data(), static_cast<offile_off_t>(bytes.size()));
  stream.setEos();
  layout.file->transferInit();
  OFCondition status = EC_Normal;
  try {
    status = layout.file->read(stream, EXS_Unknown, EGL_noChange, DCM_MaxReadLength);
  } catch (const std::bad_alloc&) {
    CHEX_FAIL(where, ": the DICOM file declares more data than memory allows; the file is corrupt");
  }
  layout.file->transferEnd();
  CHEX_CHECK(status.good(), where, ": the DICOM file is truncated or corrupt (DCMTK: ", status.text(),
             "); export it again from the archive");

  DcmDataset& ds = *layout.file->getDataset();
  CHEX_CHECK(!ds.tagExists(DCM_FloatPixelData) && !ds.tagExists(DCM_DoubleFloatPixelData), where,
             ": the DICOM file holds floating-point pixel data, which chex does not read; export the "
             "radiograph as integer pixels");
  CHEX_CHECK(ds.tagExistsWithValue(DCM_PixelData), where,
             ": the DICOM file has no pixel data (it is a report, a structured document or an incomplete export, "
             "not an image)");
  Sint32 frames = 1;
  if (ds.findAndGetSint32(DCM_NumberOfFrames, frames).good())
    CHEX_CHECK(frames <= 1, where, ": the DICOM file holds ", frames,
               " frames (a multi-frame image); chex reads single radiographs: export the frame you want as its own "
               "file");

  const std::string photometric = string_of(ds, DCM_PhotometricInterpretation);
  CHEX_CHECK(photometric == "MONOCHROME1" || photometric == "MONOCHROME2", where, ": the DICOM image is ",
             photometric.empty() ? std::string("of unstated colour type") : "colour (" + photometric + ")",
             "; chex reads greyscale radiographs (MONOCHROME1 or MONOCHROME2) only");
  const uint16_t samples = optional_us(ds, DCM_SamplesPerPixel, 1);
  CHEX_CHECK(samples == 1, where, ": the DICOM image has ", samples,
             " samples per pixel for a greyscale image (1 expected); the file is corrupt");
  layout.height = require_us(ds, DCM_Rows, "Rows", where);
  layout.width = require_us(ds, DCM_Columns, "Columns", where);
  const uint16_t allocated = require_us(ds, DCM_BitsAllocated, "Bits Allocated", where);
  layout.bits_stored = require_us(ds, DCM_BitsStored, "Bits Stored", where);
  const uint16_t high_bit = optional_us(ds, DCM_HighBit, static_cast<uint16_t>(layout.bits_stored - 1));
  CHEX_CHECK(allocated == 8 || allocated == 16, where, ": the DICOM image has ", allocated,
             " bits allocated per pixel; chex reads 8 or 16 (up to 16 bits stored)");
  CHEX_CHECK(layout.bits_stored >= 1 && layout.bits_stored <= allocated && high_bit < allocated &&
                 high_bit + 1 >= layout.bits_stored,
             where, ": the DICOM image's bit layout is inconsistent (", layout.bits_stored, " bits stored, high bit ",
             high_bit, ", ", allocated, " allocated); the file is corrupt");

  const E_TransferSyntax xfer = ds.getOriginalXfer();
  const DcmXfer syntax(xfer);
  if (syntax.isEncapsulated() && !DcmCodecList::canChangeCoding(xfer, EXS_LittleEndianExplicit)) {
    const bool jpeg2000 = std::string(syntax.getXferName()).find("2000") != std::string::npos;
    CHEX_FAIL(where, ": the DICOM pixel data is compressed as ", syntax.getXferName(), " (transfer syntax ",
              syntax.getXferID(), "), which chex cannot decode",
              jpeg2000 ? " (the free DCMTK has no JPEG 2000 decoder)" : "",
              "; convert the file to uncompressed DICOM first, e.g. with GDCM: gdcmconv --raw IN.dcm OUT.dcm");
  }
  return layout;
}

Image decode_dicom(const DicomLayout& layout, const std::string& where) {
  DcmDataset& ds = *layout.file->getDataset();
  OFCondition status = EC_Normal;
  try {
    status = ds.chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
  } catch (const std::bad_alloc&) {
    CHEX_FAIL(where, ": the DICOM pixel data cannot be decompressed in the memory available; the file is corrupt");
  }
  CHEX_CHECK(status.good() && ds.canWriteXfer(EXS_LittleEndianExplicit), where,
             ": cannot decompress the DICOM pixel data (", status.text(), "); the file is corrupt");

  const int allocated = optional_us(ds, DCM_BitsAllocated, 16);
  const int high_bit = optional_us(ds, DCM_HighBit, static_cast<uint16_t>(layout.bits_stored - 1));
  const bool is_signed = optional_us(ds, DCM_PixelRepresentation, 0) == 1;
  DcmElement* element = nullptr;
  CHEX_CHECK(ds.findAndGetElement(DCM_PixelData, element).good() && element, where,
             ": the DICOM file has no pixel data");
  Uint8* bytes = nullptr;
  if (element->getUint8Array(bytes).bad() || bytes == nullptr) {
    Uint16* words = nullptr;  // OW pixel data, in the machine's (little-endian) order
    if (element->getUint16Array(words).good()) bytes = reinterpret_cast<Uint8*>(words);
  }
  const size_t pixels = size_t{layout.width} * layout.height;
  const size_t needed = pixels * (allocated / 8);
  CHEX_CHECK(bytes != nullptr && element->getLength() >= needed, where, ": the DICOM pixel data holds ",
             element->getLength(), " bytes, the image needs ", needed, "; the file is truncated");

  DicomGreyscale g;
  g.monochrome1 = string_of(ds, DCM_PhotometricInterpretation) == "MONOCHROME1";
  g.modality_lut = read_lut(ds, DCM_ModalityLUTSequence, is_signed, "Modality LUT", where);
  Float64 slope = 1, intercept = 0;
  if (ds.findAndGetFloat64(DCM_RescaleSlope, slope).good()) g.slope = slope;
  if (ds.findAndGetFloat64(DCM_RescaleIntercept, intercept).good()) g.intercept = intercept;
  g.voi_lut = read_lut(ds, DCM_VOILUTSequence, is_signed, "VOI LUT", where);
  Float64 center = 0, width = 0;
  if (ds.findAndGetFloat64(DCM_WindowCenter, center, 0).good() && ds.findAndGetFloat64(DCM_WindowWidth, width, 0).good())
    g.window = DicomWindow{center, width, parse_voi_function(string_of(ds, DCM_VOILUTFunction), where)};

  const std::vector<int32_t> stored =
      stored_values(bytes, pixels, allocated, layout.bits_stored, high_bit, is_signed);
  const std::vector<uint8_t> grey = dicom_to_8bit(stored, g);
  Image image = make_image(static_cast<int>(layout.width), static_cast<int>(layout.height));
  for (size_t i = 0; i < pixels; ++i) std::fill_n(&image.pixels[i * 3], 3, grey[i]);
  return image;
}

}  // namespace chex::data::detail
