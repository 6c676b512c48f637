#pragma once
// NIH's BBox_List_2017.csv: the hand-drawn boxes of 8 findings on 880 images,
//   Image Index,Finding Label,Bbox [x,y,w,h],,,
//   00013118_008.png,Atelectasis,225.08,547.02,86.78,79.19
// x, y (the top-left corner), w and h in the original image's pixels. The file says "Infiltrate"
// where the label file says "Infiltration"; labels are returned as the 14 CheXNet labels' indices.
// Every error names the file and the line.
#include <string>
#include <string_view>
#include <vector>

namespace chex::data {

struct BoxRecord {
  std::string image;
  int label = 0;  // index into kLabelNames
  double x = 0, y = 0, w = 0, h = 0;
  int line = 0;   // 1-based line in the box file
};

std::vector<BoxRecord> parse_box_csv(std::string_view text, const std::string& origin);
std::vector<BoxRecord> read_box_file(const std::string& path);

}  // namespace chex::data
