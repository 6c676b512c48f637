#pragma once
// The sections of the HTML report, each a fragment of HTML (html_report.cpp puts them together).
#include <string>

#include "chex/report/html_report.h"

namespace chex::report::detail {

std::string summary_section(const ReportInputs& in);      // headline and per-class table
std::string curves_section(const ReportInputs& in);       // ROC and precision-recall per class
std::string calibration_section(const ReportInputs& in);  // reliability plot
std::string training_section(const ReportInputs& in);     // loss and validation AUROC per epoch
std::string readers_section(const ReportInputs& in);      // the reader study
std::string gallery_section(const ReportInputs& in);      // CAM overlays

// Colours shared by the sections: a colour-blind-safe palette (Okabe-Ito).
inline constexpr const char* kBlue = "#0072B2";
inline constexpr const char* kOrange = "#E69F00";
inline constexpr const char* kVermillion = "#D55E00";
inline constexpr const char* kGreen = "#009E73";
inline constexpr const char* kGrey = "#999999";

std::string base64(const std::string& bytes);

}  // namespace chex::report::detail
