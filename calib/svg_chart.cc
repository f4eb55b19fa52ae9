#include "calib/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace sq::svg {

namespace {

constexpr int kLeft = 62, kRight = 12, kTop = 26, kBottom = 38;

std::string F(const char* fmt, double a) {
  char b[64];
  std::snprintf(b, sizeof(b), fmt, a);
  return b;
}

std::string Num(double v) {  // compact tick label
  if (v == 0) return "0";
  const double a = std::abs(v);
  if (a >= 1e4 || a < 1e-3) return F("%.0e", v);
  if (a >= 10) return F("%.0f", v);
  return F("%.3g", v);
}

// Maps data y to pixels, linear or log10.
struct YScale {
  bool log = false;
  double lo = 0, hi = 1;
  int top = 0, bottom = 0;
  bool Usable(double v) const { return std::isfinite(v) && (!log || v > 0); }
  double T(double v) const { return log ? std::log10(v) : v; }
  double Px(double v) const {
    const double t = (T(v) - lo) / (hi - lo);
    return bottom - t * (bottom - top);
  }
};

YScale MakeScale(const Axes& ax, const std::vector<const std::vector<double>*>& ys) {
  YScale s;
  s.log = ax.log_y, s.top = kTop, s.bottom = ax.height - kBottom;
  double lo = INFINITY, hi = -INFINITY;
  auto take = [&](double v) {
    if (!s.Usable(v)) return;
    lo = std::min(lo, s.T(v));
    hi = std::max(hi, s.T(v));
  };
  for (const auto* y : ys) for (double v : *y) take(v);
  for (const auto& [v, label] : ax.hlines) take(v);
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  if (s.log) lo = std::floor(lo), hi = std::max(std::ceil(hi), lo + 1);
  else if (hi - lo < 1e-12) hi = lo + 1;
  if (!s.log) lo = std::min(lo, 0.0);
  s.lo = lo, s.hi = hi;
  return s;
}

std::string Frame(const Axes& ax, const YScale& s, int n) {
  const int w = ax.width, h = ax.height, plot_w = w - kLeft - kRight;
  std::string o = "<svg xmlns='http://www.w3.org/2000/svg' width='" + std::to_string(w) +
                  "' height='" + std::to_string(h) + "' font-family='sans-serif' font-size='10'>";
  o += "<text x='" + std::to_string(w / 2) + "' y='14' text-anchor='middle' font-size='12' "
       "font-weight='bold'>" + Escape(ax.title) + "</text>";
  o += "<rect x='" + std::to_string(kLeft) + "' y='" + std::to_string(kTop) + "' width='" +
       std::to_string(plot_w) + "' height='" + std::to_string(s.bottom - s.top) +
       "' fill='none' stroke='#999'/>";
  // y ticks: powers of ten (log) or five even steps (linear)
  const int steps = s.log ? static_cast<int>(s.hi - s.lo) : 4;
  for (int i = 0; i <= steps; ++i) {
    const double t = s.lo + (s.hi - s.lo) * i / steps;
    const double v = s.log ? std::pow(10.0, t) : t;
    const double y = s.Px(v);
    o += "<line x1='" + std::to_string(kLeft) + "' x2='" + std::to_string(w - kRight) + "' y1='" +
         F("%.1f", y) + "' y2='" + F("%.1f", y) + "' stroke='#eee'/>";
    o += "<text x='" + std::to_string(kLeft - 4) + "' y='" + F("%.1f", y + 3) +
         "' text-anchor='end'>" + Num(v) + "</text>";
  }
  const int every = std::max(1, static_cast<int>(ax.x_ticks.size()) / 16);
  for (size_t i = 0; i < ax.x_ticks.size(); i += every) {
    const double x = kLeft + (n > 1 ? plot_w * double(i) / (n - 1) : plot_w / 2.0);
    o += "<text x='" + F("%.1f", x) + "' y='" + std::to_string(s.bottom + 12) +
         "' text-anchor='middle'>" + Escape(ax.x_ticks[i]) + "</text>";
  }
  o += "<text x='" + std::to_string(kLeft + plot_w / 2) + "' y='" + std::to_string(h - 6) +
       "' text-anchor='middle'>" + Escape(ax.x_label) + "</text>";
  o += "<text x='12' y='" + std::to_string((s.top + s.bottom) / 2) +
       "' text-anchor='middle' transform='rotate(-90 12 " + std::to_string((s.top + s.bottom) / 2) +
       ")'>" + Escape(ax.y_label) + "</text>";
  for (const auto& [v, label] : ax.hlines) {
    if (!s.Usable(v)) continue;
    const double y = s.Px(v);
    o += "<line x1='" + std::to_string(kLeft) + "' x2='" + std::to_string(w - kRight) + "' y1='" +
         F("%.1f", y) + "' y2='" + F("%.1f", y) + "' stroke='#555' stroke-dasharray='2,3'/>";
    o += "<text x='" + std::to_string(w - kRight - 2) + "' y='" + F("%.1f", y - 3) +
         "' text-anchor='end' fill='#555'>" + Escape(label) + "</text>";
  }
  return o;
}

double XPx(const Axes& ax, size_t i, size_t n) {
  const int plot_w = ax.width - kLeft - kRight;
  return kLeft + (n > 1 ? plot_w * double(i) / double(n - 1) : plot_w / 2.0);
}

}  // namespace

std::string Escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string LineChart(const Axes& ax, const std::vector<Series>& series) {
  std::vector<const std::vector<double>*> ys;
  size_t n = 0;
  for (const Series& s : series) ys.push_back(&s.y), n = std::max(n, s.y.size());
  const YScale sc = MakeScale(ax, ys);
  std::string o = Frame(ax, sc, static_cast<int>(n));
  int legend_x = kLeft + 6;
  for (const Series& s : series) {
    std::string pts;
    for (size_t i = 0; i < s.y.size(); ++i) {
      if (!sc.Usable(s.y[i])) continue;
      pts += F("%.1f,", XPx(ax, i, n)) + F("%.1f ", sc.Px(s.y[i]));
      o += "<circle cx='" + F("%.1f", XPx(ax, i, n)) + "' cy='" + F("%.1f", sc.Px(s.y[i])) +
           "' r='2' fill='" + s.color + "'/>";
    }
    o += "<polyline fill='none' stroke='" + s.color + "' stroke-width='1.5'" +
         (s.dashed ? " stroke-dasharray='4,3'" : "") + " points='" + pts + "'/>";
    o += "<text x='" + std::to_string(legend_x) + "' y='" + std::to_string(kTop + 11) +
         "' fill='" + s.color + "'>" + Escape(s.label) + "</text>";
    legend_x += 8 + 6 * static_cast<int>(s.label.size());
  }
  return o + "</svg>";
}

std::string StemChart(const Axes& ax, const std::vector<double>& y, const std::string& color) {
  const YScale sc = MakeScale(ax, {&y});
  std::string o = Frame(ax, sc, static_cast<int>(y.size()));
  const double base = sc.bottom;
  for (size_t i = 0; i < y.size(); ++i) {
    if (!sc.Usable(y[i])) continue;
    const double x = XPx(ax, i, y.size());
    o += "<line x1='" + F("%.1f", x) + "' x2='" + F("%.1f", x) + "' y1='" + F("%.1f", base) +
         "' y2='" + F("%.1f", sc.Px(y[i])) + "' stroke='" + color + "'/>";
  }
  return o + "</svg>";
}

std::string Heatmap(const Grid& g) {
  const int rows = static_cast<int>(g.values.size());
  const int cols = rows ? static_cast<int>(g.values[0].size()) : 0;
  const int left = 70, top = 40, c = g.cell;
  const int title_w = left + 7 * static_cast<int>(g.title.size());  // ~7 px per character
  const int w = std::max(left + cols * c + 70, title_w), h = top + rows * c + 10;
  int r0 = 0, g0 = 0, b0 = 0;
  std::sscanf(g.color.c_str(), "#%02x%02x%02x", &r0, &g0, &b0);
  std::string o = "<svg xmlns='http://www.w3.org/2000/svg' width='" + std::to_string(w) +
                  "' height='" + std::to_string(h) + "' font-family='sans-serif' font-size='10'>";
  o += "<text x='" + std::to_string(left) + "' y='14' font-size='12' font-weight='bold'>" +
       Escape(g.title) + "</text>";
  const bool print = c >= 22 && rows * cols <= 600;
  for (int j = 0; j < cols; ++j) {
    if (j < static_cast<int>(g.col_labels.size()) && (c >= 14 || j % 4 == 0)) {
      o += "<text x='" + F("%.1f", left + (j + 0.5) * c) + "' y='" + std::to_string(top - 4) +
           "' text-anchor='middle'>" + Escape(g.col_labels[j]) + "</text>";
    }
  }
  for (int i = 0; i < rows; ++i) {
    if (i < static_cast<int>(g.row_labels.size())) {
      o += "<text x='" + std::to_string(left - 4) + "' y='" + F("%.1f", top + (i + 0.65) * c) +
           "' text-anchor='end'>" + Escape(g.row_labels[i]) + "</text>";
    }
    for (int j = 0; j < cols; ++j) {
      const double v = g.values[i][j];
      const double t = std::isfinite(v) ? std::clamp((v - g.lo) / (g.hi - g.lo), 0.0, 1.0) : 0;
      char fill[16];
      std::snprintf(fill, sizeof(fill), "#%02x%02x%02x", int(255 + t * (r0 - 255)),
                    int(255 + t * (g0 - 255)), int(255 + t * (b0 - 255)));
      o += "<rect x='" + std::to_string(left + j * c) + "' y='" + std::to_string(top + i * c) +
           "' width='" + std::to_string(c) + "' height='" + std::to_string(c) + "' fill='" + fill +
           "' stroke='#fff'><title>" + Escape(g.row_labels[i] + ", " + g.col_labels[j]) + ": " +
           F("%.4g", v) + "</title></rect>";
      if (print) {
        o += "<text x='" + F("%.1f", left + (j + 0.5) * c) + "' y='" +
             F("%.1f", top + (i + 0.65) * c) + "' text-anchor='middle' font-size='9' fill='" +
             (t > 0.55 ? "#fff" : "#333") + "'>" + F("%.2f", v) + "</text>";
      }
    }
  }
  // colour legend
  const int lx = left + cols * c + 12;
  o += "<text x='" + std::to_string(lx) + "' y='" + std::to_string(top + 8) + "'>" + Num(g.hi) +
       "</text><rect x='" + std::to_string(lx) + "' y='" + std::to_string(top + 12) +
       "' width='12' height='12' fill='" + g.color + "'/><rect x='" + std::to_string(lx) +
       "' y='" + std::to_string(top + 26) + "' width='12' height='12' fill='#fff' stroke='#ccc'/>" +
       "<text x='" + std::to_string(lx) + "' y='" + std::to_string(top + 50) + "'>" + Num(g.lo) +
       "</text>";
  return o + "</svg>";
}

}  // namespace sq::svg
