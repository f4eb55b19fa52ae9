// A profile as one self-contained HTML page: inline SVG charts and tables, no scripts, no
// network. Opened in any browser; scripts/screenshot-report renders it headless.
#pragma once

#include <string>

#include "calib/profile_report.h"

namespace sq {

std::string ProfileHtml(const ProfileResult& r, const ProfileMeta& meta);

}  // namespace sq
