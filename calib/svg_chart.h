// Minimal inline-SVG charts for the HTML report: line charts with a log or linear y axis, stem
// plots, heatmaps. Each returns one <svg> element as text.
#pragma once

#include <string>
#include <vector>

namespace sq::svg {

std::string Escape(const std::string& s);  // &, <, >, " for HTML text and attributes

struct Series {
  std::string label, color;
  std::vector<double> y;  // one value per x; non-finite or (log) non-positive values are skipped
  bool dashed = false;
};

struct Axes {
  std::string title, x_label, y_label;
  bool log_y = false;
  int width = 420, height = 220;
  std::vector<std::string> x_ticks;  // labels at x = 0, 1, ... (thinned when crowded)
  std::vector<std::pair<double, std::string>> hlines;  // horizontal reference lines
};

std::string LineChart(const Axes& ax, const std::vector<Series>& series);
// One vertical stem per x (e.g. per channel), for long series.
std::string StemChart(const Axes& ax, const std::vector<double>& y, const std::string& color);

// rows x cols cells coloured from white (lo) to `color` (hi); labels per row and column, the
// value printed in each cell when the grid is small enough.
struct Grid {
  std::string title;
  std::vector<std::string> row_labels, col_labels;
  std::vector<std::vector<double>> values;  // [rows][cols]
  double lo = 0, hi = 1;
  std::string color = "#c0392b";
  int cell = 26;
};
std::string Heatmap(const Grid& g);

}  // namespace sq::svg
